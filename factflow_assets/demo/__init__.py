"""The demo website and the local site server."""
