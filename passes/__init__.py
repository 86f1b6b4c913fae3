"""Graph -> Graph passes, one module each; `pipeline.PIPELINE` lists them in order."""
