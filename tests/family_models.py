"""The tests' random-weight models of each CLIP family: they live in `clipnb.testing` (one factory for the
tests, the benchmark and the scripts); this module keeps the tests' `from family_models import ...`."""
from clipnb.testing import (  # noqa: F401
    save_cn_clip_checkpoint,
    save_hf_chinese_clip_model,
    save_hf_clip_model,
    save_hf_siglip_model,
    save_open_clip_model,
    save_open_clip_siglip_model,
    save_open_clip_state_dict,
)
