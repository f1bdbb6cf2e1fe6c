"""Stage 5, one module per question a user asks: how good are the predictions (`evaluation`), which prompt
settings work best (`prompt_settings`), which model (`model_comparison`), a few labelled examples
(`few_shot`), search (`search`), duplicates (`duplicates`), the collection's map (`collection_map`),
videos (`video`) and summaries of a results table (`summary`).

May import: `clipnb.zeroshot`, `clipnb.embed`, `clipnb.models`, `clipnb.data` and the base modules; never
plotting, writing reports or widgets."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "collection_map": "MapError embedding_map",
    "duplicates": "duplicate_summary find_duplicates",
    "evaluation": "Evaluation evaluate_labelled",
    "few_shot": "ProbeError curve_summary probe_labelled",
    "model_comparison": "ModelComparison compare_models",
    "prompt_settings": "SettingsComparison highlight_changes score_settings setting_summary",
    "search": "ImageIndex index_from_store index_images rank_captions search_image search_text",
    "summary": "class_summary prediction_counts ratio_counts run_summary summary_text",
    "video": "VideoFrames VideoResult classify_video embed_video",
})
