"""The adapter registry: every adapter type a pipeline YAML may name."""

from .base import (
    Adapter,
    AdapterConfig,
    AdapterContext,
    Emit,
    Message,
    PermanentError,
    SkipMessage,
    Unchanged,
)
from .html_to_markdown import HtmlToMarkdown
from .link_crawler import LinkCrawler
from .sitemap_parser import SitemapParser
from .smart_segmenter import SmartSegmenter
from .url_expander import UrlExpander
from .web_content_storage import WebContentStorage
from .web_crawler import WebCrawler
from .web_scraper import WebScraper

ADAPTERS: dict[str, type[Adapter]] = {
    cls.type: cls
    for cls in (SitemapParser, UrlExpander, LinkCrawler, WebScraper, WebCrawler, WebContentStorage, HtmlToMarkdown, SmartSegmenter)
}

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterConfig",
    "AdapterContext",
    "Emit",
    "Message",
    "PermanentError",
    "SkipMessage",
    "Unchanged",
]
