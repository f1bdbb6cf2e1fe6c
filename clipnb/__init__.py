"""clipnb: zero-shot image analysis with CLIP, for notebooks and the command line.

Data flows one way: files -> images -> embeddings -> scores -> tables -> figures/files.
"""
from .cache import EmbeddingCache
from .classify import classify, results_table, similarity
from .embedding import EmbeddedImages, embed_images
from .export import ExportError, save_figure, write_csv
from .images import FolderError, ImageReadError, aspect_info, find_images, folder_note, open_image
from .models import ClipModel, ModelError, available_models, load_model
from .prompts import TEMPLATE_SETS, PromptError, PromptSpec, prompt_spec, resolve_templates
from .scoring import ClassWarning, ZeroShotHead, build_head, class_warnings, encode_texts
from .summary import class_summary, prediction_counts, ratio_counts, run_summary, summary_text

__version__ = "0.1.0"

__all__ = [
    "ClassWarning", "ClipModel", "EmbeddedImages", "EmbeddingCache", "ExportError", "FolderError",
    "ImageReadError", "ModelError", "PromptError", "PromptSpec", "TEMPLATE_SETS", "ZeroShotHead", "aspect_info",
    "available_models", "build_head", "class_summary", "class_warnings", "classify", "embed_images",
    "encode_texts", "find_images", "folder_note", "load_model", "open_image", "prediction_counts",
    "prompt_spec", "ratio_counts", "resolve_templates", "results_table", "run_summary", "save_figure",
    "similarity", "summary_text", "write_csv",
]
