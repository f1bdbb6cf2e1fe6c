"""clipnb's demo world: generated coloured shapes, example data made from them, and the training of the
demo CLIP model on them.

- `clipnb.demo.shapes`: draws the world (images, captions, labelled folders); its words (colours, shapes,
  classes) are `clipnb.models.demo_vocabulary`, which is all the demo model needs at run time.
- `clipnb.demo.data`: `shapes_folder` (a labelled folder of shapes), `blurred_shapes_folder` (hard ones, for
  calibration), `example_collection` and `plant_copies` (planted near-duplicates), `shapes_video` and
  `write_video`.
- `clipnb.demo.train`: contrastive training of openai-clip models (imports openai-clip and torch
  training code; only scripts/train_demo.py and the tests import it).

Classifying photos with clipnb imports none of this.
"""
from .data import (blurred_shapes_folder, example_collection, plant_copies, shapes_folder, shapes_video,
                   write_video)

__all__ = ["blurred_shapes_folder", "example_collection", "plant_copies", "shapes_folder", "shapes_video",
           "write_video"]
