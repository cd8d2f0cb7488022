"""Where a page keeps its main content, and what inside it is not content.

Documentation pages say where their content is: `<main>`, `[role=main]`, `<article>`, or the
container a documentation generator writes (Sphinx's `div.body`, mdBook's `main`, MkDocs', Node's
`#apicontent`, Docusaurus', ...). Pages that say nothing usually still have one element that holds
the page's `<h1>` and most of its text. `find_main_region` returns that element, or None when the
page marks nothing a reader could trust (then boilerplate detection decides, see
article_extraction.py). `drop_boilerplate` first removes what is on the page but is not
content: navigation, breadcrumbs, "previous/next", "edit this page", search, share buttons, hidden
elements and heading permalinks. The rules are generic HTML semantics and class/id words, never a
site or a URL.

Plain lxml work with no event loop; it runs in the html_to_markdown worker processes.
"""

from __future__ import annotations

import re
from copy import deepcopy
from typing import TypeAlias

from lxml import etree

Element: TypeAlias = etree._Element

#: Explicit markers of the main content, and the containers common documentation generators write.
_MARKED = etree.XPath(
    "//main | //*[@role='main'] | //article | //*[contains(concat(' ', normalize-space(@itemprop), ' '), ' articleBody ')]"
    " | //*[contains(concat(' ', normalize-space(@itemprop), ' '), ' mainContentOfPage ')]"
)
#: The containers common documentation generators write, by class and by id.
_CONTAINER_CLASSES = frozenset(
    {
        "body",  # Sphinx (classic, alabaster, pydoctheme): div.body
        "rst-content",  # Read the Docs theme
        "bd-article",  # PyData Sphinx theme
        "md-content",  # MkDocs Material
        "theme-doc-markdown",  # Docusaurus
        "markdown-body",  # GitHub-style renderers
        "markdown-section",  # Docsify
        "vp-doc",  # VitePress
        "sl-markdown-content",  # Starlight
        "content",  # Hugo themes, mdBook's wrapper, Jekyll themes
        "main-content",
        "post-content",
        "entry-content",
        "article-body",
        "page-content",
        "documentation",
    }
)
_CONTAINER_IDS = frozenset({"apicontent", "docs-content", "main-content", "maincontent", "main", "content", "article"})
_NAMED = etree.XPath("//*[@class or @id]")


def _generator_containers(document: Element) -> list[Element]:
    """Elements whose class or id is a documentation generator's content container (one pass
    in Python: sixteen `contains(concat(...))` XPath scans cost a large page 150 ms)."""
    return [
        element
        for element in _NAMED(document)
        if element.get("id") in _CONTAINER_IDS or not _CONTAINER_CLASSES.isdisjoint((element.get("class") or "").split())
    ]


#: A marked element must hold at least this share of the page's own text (text outside links) to
#: be the main region: a `<main>` around a hero banner, or one teaser `<article>` of a listing, is
#: not the page's content.
MIN_SHARE = 0.25
#: A marked element inside the chosen one that holds at least this share of its text is the
#: tighter region (an `<article>` inside `<main>`, a generator's container inside `#content`).
DESCEND_SHARE = 0.6
#: A class that says both content and boilerplate is content when it holds this share of the
#: page's text.
MIXED_NAME_SHARE = 0.3
#: The element holding the page's `<h1>` must hold at least this share of the page's text.
H1_SHARE = 0.5

#: Whole words of a class or id that name boilerplate (split at "-" and "_" too).
_BOILERPLATE_WORDS = (
    "breadcrumb|breadcrumbs|pagination|pager|prevnext|prev-next|next-prev|navbar|navigation|nav|menu|sidebar|sphinxsidebar"
    "|toc|table-of-contents|skip-link|skiplink|skip|edit-this-page|edit-page|editlink|edit-link|feedback|share|sharing"
    "|social|cookie|cookies|newsletter|related|advert|advertisement|ads|sponsor|banner|announcement|footer|masthead"
    "|search|searchbox|rating|helpful|copy-button|clipboard|comments|comment-list|subscribe|popup|modal"
    "|aside|recent|popular|trending|widget|widgets|promo|teaser|teasers|tagcloud|signup"
)
_BOILERPLATE_NAME = re.compile(rf"(?:^|[-_])({_BOILERPLATE_WORDS})(?=$|[-_])", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+")
#: "recentNews", "asideL": a camel-cased name's words, split like "recent-news".
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_HOLDS_CONTENT = etree.XPath("boolean(.//main | .//article | .//*[@role='main'] | .//h1)")
#: Words of a class or id that name the content itself.
_CONTENT_NAME = re.compile(r"(?:^|[-_])(?:article|content|main|body|entry|post|story|text|prose|markdown|document)(?:$|[-_])", re.IGNORECASE)
#: Containers that class/id words may remove; never a span (syntax-highlighting tokens such as
#: Prism's `token comment` are spans) and never anything inside a code block.
_NAMED_CONTAINERS = frozenset({"div", "section", "aside", "nav", "ul", "ol", "header", "footer", "form", "p", "details", "table"})
_ALWAYS_DROPPED = frozenset(
    {
        "nav",
        "form",
        "button",
        "input",
        "select",
        "textarea",
        "label",
        "dialog",
        "script",
        "style",
        "noscript",
        "template",
        "iframe",
        "object",
        "embed",
        "canvas",
        "link",
        "meta",
    }
)
_BOILERPLATE_ROLES = frozenset({"navigation", "search", "banner", "contentinfo", "menu", "menubar", "toolbar", "dialog", "alertdialog"})
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
#: What a heading's permalink shows.
PERMALINK_TEXTS = frozenset({"", "¶", "#", "§", "🔗", "⚓", "link", "permalink", "anchor", "¶ link"})
_PERMALINK_CLASS = re.compile(
    r"(?:^|\s)(?:headerlink|header-link|headerLink|anchor|anchor-link|anchorjs-link|header-anchor|heading-anchor|hash-link|permalink|mark|zola-anchor)(?:\s|$)"
)
_WHITESPACE = re.compile(r"\s+")
#: How much of an element's text is its opening, where its heading or title is.
_OPENING_CHARS = 300
_OPENING_TEXTS = 20


def parse_html(html: str | bytes) -> Element | None:
    """The page as a plain lxml tree (not lxml.html's element classes, whose Python-level class
    lookup costs more than the parse on a large page), or None for a document with no elements."""
    data = html.encode("utf-8") if isinstance(html, str) else html
    try:
        document = etree.fromstring(data, _UTF8_PARSER if isinstance(html, str) else _PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return document


def text_of(element: Element) -> str:
    """All the text inside an element (not its tail)."""
    return etree.tostring(element, method="text", encoding="unicode", with_tail=False)


def drop(element: Element) -> None:
    """Remove an element and what it holds, but keep the text that follows it (its tail)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def unwrap(element: Element) -> None:
    """Remove an element's tag but keep what it holds in its place (lxml.html's drop_tag)."""
    parent = element.getparent()
    if parent is None:
        return
    previous = element.getprevious()
    if element.text:
        if previous is None:
            parent.text = (parent.text or "") + element.text
        else:
            previous.tail = (previous.tail or "") + element.text
    if element.tail:
        if len(element):
            last = element[-1]
            last.tail = (last.tail or "") + element.tail
        elif previous is None:
            parent.text = (parent.text or "") + element.tail
        else:
            previous.tail = (previous.tail or "") + element.tail
    index = parent.index(element)
    parent[index : index + 1] = element[:]


def drop_invisible(document: Element) -> None:
    """Remove what a reader never sees: scripts, styles, templates, comments, hidden elements."""
    etree.strip_elements(
        document,
        etree.Comment,
        etree.ProcessingInstruction,
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "{http://www.w3.org/2000/svg}svg",
        with_tail=False,
    )
    for element in document.xpath("//*[@hidden or @aria-hidden='true' or @style]"):
        if element.get("hidden") is not None or _HIDDEN_STYLE.search(element.get("style") or ""):
            drop(element)
        elif element.get("aria-hidden") == "true" and not text_of(element).strip():
            drop(element)  # icons; aria-hidden text (permalink symbols) is judged by the permalink rule


def find_main_region(document: Element) -> Element | None:
    """The element holding the page's main content, or None when the page marks none."""
    body = document.find("body")
    if body is None:
        body = document
    total = _content_chars(body)
    if total == 0:
        return None
    marked_elements = _MARKED(document)  # kept alive: lxml hands out the same proxies (and ids) while they are
    marked = {id(element) for element in marked_elements}
    candidates = {id(element): element for element in marked_elements + _generator_containers(document)}
    shares = {key: chars / total for key, chars in _content_chars_of(candidates, document).items()}
    eligible = [element for key, element in candidates.items() if shares[key] >= MIN_SHARE and element is not body]
    if eligible:
        region = max(eligible, key=lambda element: (shares[id(element)], -_depth(element)))
        headline = region.find(".//h1")
        while True:
            inner = [
                element
                for element in eligible
                if element is not region and _is_ancestor(region, element) and shares[id(element)] >= DESCEND_SHARE * shares[id(region)]
            ]
            if not inner:
                break
            region = max(inner, key=lambda element: (shares[id(element)], -_depth(element)))
        if headline is not None and region.find(".//h1") is None and id(_outermost_marked(headline, marked)) in marked:
            # the title of what the page marks as its content stays with the content
            title = deepcopy(headline)
            title.tail = None
            region.insert(0, title)
        return region
    return _region_of_h1(document, body, total)


def _outermost_marked(element: Element, marked: set[int]) -> Element | None:
    """The outermost element the page marks as its content (`main`, `article`, ...) around `element`."""
    found = None
    for ancestor in element.iterancestors():
        if id(ancestor) in marked:
            found = ancestor
    return found


def _region_of_h1(document: Element, body: Element, total: int) -> Element | None:
    """The smallest element around the page's content `<h1>` that holds H1_SHARE of its text.

    A site's logo is often an `<h1>` too, one link to the home page: the content heading is the
    one that is not all link (the first of them)."""
    headings = document.xpath("//h1")
    content_headings = [h for h in headings if text_of(h).strip() and _content_chars(h) > 0]
    for heading in content_headings or headings:
        element = heading.getparent()
        while element is not None and element is not body:
            if _content_chars(element) >= H1_SHARE * total:
                return element
            element = element.getparent()
    return None


def drop_boilerplate(document: Element) -> None:
    """Remove what is on the page but is not content: navigation, search, sidebars, headers and
    footers, breadcrumbs, "previous/next". Done before the region is looked for, so that what a
    marked element holds is measured against the page's content, not against its menus."""
    body = document.find("body")
    total = _content_chars(body if body is not None else document)
    for element in list(document.iter(etree.Element)):
        if element.getparent() is None or element.tag in ("html", "body", "head"):
            continue  # the root, or already removed with an ancestor
        if _is_boilerplate(element, total):
            drop(element)


def drop_permalinks(region: Element) -> None:
    """Remove the headings' permalink symbols (¶, #, 🔗) from the region."""
    for anchor in region.xpath(".//a[@href]"):
        if is_permalink(anchor):
            drop(anchor)


def is_permalink(anchor: Element) -> bool:
    """A link to its own section that only shows a symbol (¶, #, 🔗): a heading's permalink."""
    href = anchor.get("href", "")
    if "#" not in href:
        return False
    text = _WHITESPACE.sub(" ", text_of(anchor)).strip().lower()
    if text in PERMALINK_TEXTS:
        return True
    return bool(_PERMALINK_CLASS.search(anchor.get("class") or "")) and len(text) <= 2


def _is_boilerplate(element: Element, total: int) -> bool:
    """Whether the element is boilerplate; `total` is the page's text, in characters."""
    tag = element.tag
    if not isinstance(tag, str):
        return False
    if tag in _ALWAYS_DROPPED:
        return not _inside_code(element)
    role = (element.get("role") or "").lower()
    if role in _BOILERPLATE_ROLES:
        return True
    if tag == "footer":
        return not element.xpath(".//pre | .//table")
    if tag == "header":
        return not element.xpath(".//h1 | .//h2 | .//h3 | .//h4 | .//h5 | .//h6")
    if tag == "aside" and _link_share(element) >= 0.5:
        return True
    if tag in _NAMED_CONTAINERS:
        names = [_CAMEL.sub("-", name) for name in f"{element.get('class') or ''} {element.get('id') or ''}".split()]
        if not names:
            return False
        found = {match.group(1).lower() for name in names for match in _BOILERPLATE_NAME.finditer(name)}
        if not found:
            return False
        if any(_CONTENT_NAME.search(name) and not _BOILERPLATE_NAME.search(name) for name in names):
            return False  # "article-body pagination-first": the element says it is the content too
        if any(_CONTENT_NAME.search(name) for name in names) and _content_chars(element) >= MIXED_NAME_SHARE * total:
            return False  # "content-with-sidebar-wrp" but "sidebar-content": the size tells
        if _HOLDS_CONTENT(element):
            return False  # "content-with-sidebar-wrp" around the page's article or its title
        if not _inside_code(element):
            # A section's id (a box's class) is often its heading's slug: "s-document-based-search",
            # "admonition-you-can-t-share-pickles". A word the element's opening text says too is
            # the slug's, not a sign of boilerplate.
            opening = " ".join(text for text, _ in zip(element.itertext(), range(_OPENING_TEXTS)))
            said = set(_WORD.findall(opening[:_OPENING_CHARS].lower()))
            return bool(found - said)
    return False


def _inside_code(element: Element) -> bool:
    return any(ancestor.tag in ("pre", "code") for ancestor in element.iterancestors())


def _chars(text: str) -> int:
    return len(text) - sum(map(text.count, " \n\t\r\xa0"))


def _content_chars(element: Element) -> int:
    """Characters of text outside links, whitespace left out: what a reader reads, not what
    they click."""
    return _chars(text_of(element)) - sum(_chars(text_of(anchor)) for anchor in element.iter("a"))


def _content_chars_of(elements: dict[int, Element], document: Element) -> dict[int, int]:
    """`_content_chars` of several elements at once: each link's text is measured once and taken
    from every element it sits in (a large page has thousands of links and several candidates)."""
    link_chars = dict.fromkeys(elements, 0)
    for anchor in document.iter("a"):
        holders = [ancestor for ancestor in anchor.iterancestors() if id(ancestor) in link_chars]
        if holders:
            chars = _chars(text_of(anchor))
            for holder in holders:
                link_chars[id(holder)] += chars
    return {key: _chars(text_of(element)) - link_chars[key] for key, element in elements.items()}


def _link_share(element: Element) -> float:
    total = _chars(text_of(element))
    return 1 - _content_chars(element) / total if total else 0.0


def _depth(element: Element) -> int:
    return sum(1 for _ in element.iterancestors())


def _is_ancestor(ancestor: Element, element: Element) -> bool:
    return any(parent is ancestor for parent in element.iterancestors())


_PARSER = etree.HTMLParser(remove_comments=True, remove_pis=True)
_UTF8_PARSER = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
