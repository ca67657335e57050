"""Data: caption cleaning and sub-caption sampling, webdataset shards, loaders."""
