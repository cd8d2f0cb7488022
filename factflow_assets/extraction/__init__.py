"""From a stored page to markdown and segments (architecture §2c).

The main region and its markdown, article extraction, other documents, structure counts,
segmenting, tokens and shingle signatures: plain functions, run in the workers' processes.
"""
