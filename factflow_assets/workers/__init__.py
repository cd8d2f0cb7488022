"""Worker processes for CPU-bound adapter work: a pool over one forkserver that preloads what the workers import, and workers that die with the run."""
