"""Stage 1, reading what is on disk: image files and folders (`images`), labels of a labelled folder
(`labels`), video decoding (`video`), safe output files (`files`), and the embedding cache keyed by file
content (`cache`: embeddings, file hashes and model manifests).

May import: the standard library, third-party packages, and clipnb's base modules (`clipnb.words`,
`clipnb.progress`). Nothing here knows a model, an embedding pipeline or a table of scores."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "cache": "CacheError CacheWarning EmbeddingCache",
    "images": "FolderError ImageReadError aspect_info find_images folder_note gather_images open_image",
    "labels": "LabelError folder_labels match_classes read_labels",
    "video": "VideoError sample_frames video_info",
})
