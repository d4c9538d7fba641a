"""Data: manifests, cached arrays, datasets and batch transforms. Data modules register their builders in
`signlip.registry.DATASETS`; add new ones to `signlip.registry.DATA_MODULES`."""
