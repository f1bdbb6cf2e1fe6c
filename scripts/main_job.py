"""The main job of `make demo`: classify the test images with the default model and write a report.

Uses $CLIPNB_MODEL when set, else ViT-B/32, falling back to the offline demo model (on the coloured-shape
images it knows) when ViT-B/32 cannot be had. Writes CSV and summaries under reports/.
"""
from pathlib import Path

import clipnb
from clipnb.defaults import ROOT, choose_model, default_inputs


def main() -> int:
    out = ROOT / "reports"
    model = choose_model()
    folder, classes, recursive = default_inputs(model)
    print(f"model: {model.name}; images: {folder}; classes: {', '.join(classes)}")
    results = clipnb.classify(folder, classes, "seed", model=model, recursive=recursive)
    print(clipnb.summary_text(results))
    clipnb.write_csv(results, out / "classification.csv", bom=True)
    clipnb.write_csv(clipnb.class_summary(results), out / "class_summary.csv")
    print(f"wrote {out / 'classification.csv'} and {out / 'class_summary.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
