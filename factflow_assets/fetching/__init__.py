"""Reaching the web the careful way, for the adapters that fetch.

HTTP with caps and retries, compressed bodies decoded to a cap, the network policy, robots.txt, the
per-host rate limit, request settings, sitemap documents, a page's links.
"""
