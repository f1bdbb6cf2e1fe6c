"""Stage 3, images to embeddings: the door (`runner.embed_images`, here or on Dask), the batched pipeline
(`pipeline`), the same pipeline on a Dask cluster with its Parquet store (`dask`), labelled folders embedded (`labelled`), and the vector index used for search and
neighbours (`vector_index`).

May import: `clipnb.models`, `clipnb.data` and the base modules."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "labelled": "LabelledImages embed_labelled",
    "pipeline": "EmbeddedImages",
    "runner": "embed_images",
    "vector_index": "VectorIndex",
})
