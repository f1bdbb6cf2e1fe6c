"""clipnb.report.writers writes what evaluate, video and probe compute; computing modules import no charts."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd

from clipnb.report import writers as report
from clipnb.tasks.evaluation import evaluate
from clipnb.tasks.video import VideoResult

from test_evaluate import hand_made_results


def test_an_evaluation_is_written_with_nan_as_null(tmp_path):
    results, labels = hand_made_results()
    found = evaluate(results, labels)
    comparison = pd.DataFrame({"templates": ["basic"], "n_templates": [3], "ensemble": ["embedding"],
                               "acc@1": [0.5], "acc@5": [float("nan")], "mean_per_class_recall": [0.4],
                               "mean_confidence": [0.7]})
    written = report.write_evaluation(found, tmp_path, comparison, figures=False)
    assert [p.name for p in written] == ["metrics.json", "per_image.csv", "per_class.csv", "confusion.csv",
                                         "confusion_normalised.csv", "mistakes.csv", "comparison.csv"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["evaluated"] == 6 and metrics["comparison"][0]["acc@5"] is None


def test_an_evaluation_in_chinese_has_the_articles_headers_and_chinese_figures(tmp_path):
    import matplotlib.text

    from clipnb.report.plots.evaluation import confusion_figure, mistakes_figure

    results, labels = hand_made_results()
    found = evaluate(results, labels)
    english = report.write_evaluation(found, tmp_path / "en", figures=False)
    chinese = report.write_evaluation(found, tmp_path / "zh", figures=True, lang="zh", bom=True)
    assert [p.name for p in chinese] == [p.name for p in english] + ["confusion.png", "mistakes.png"]
    per_image = pd.read_csv(tmp_path / "zh" / "per_image.csv", encoding="utf-8-sig")
    assert list(per_image.columns[:8]) == ["图像名称", "宽度", "高度", "宽高比", "比例类型", "预测类别", "最高置信度",
                                          "A_得分"]
    assert {"宽高比", "比例类型", "预测类别", "最高置信度", "A_得分", "A_概率", "正确"} <= set(per_image.columns)
    assert set(per_image["比例类型"].dropna()) == {"正方形 (1:1)"}
    plain = pd.read_csv(tmp_path / "en" / "per_image.csv")
    assert per_image["A_得分"].equals(plain["score_A"].rename("A_得分"))
    assert list(pd.read_csv(tmp_path / "zh" / "per_class.csv", encoding="utf-8-sig").columns[:2]) == ["类别", "样本数"]
    assert pd.read_csv(tmp_path / "zh" / "confusion.csv", encoding="utf-8-sig").columns[0] == "真实类别"
    assert pd.read_csv(tmp_path / "en" / "confusion.csv").columns[0] == "true"
    assert list(pd.read_csv(tmp_path / "zh" / "mistakes.csv", encoding="utf-8-sig").columns[:3]) == [
        "图像名称", "真实类别", "预测类别"]
    # metrics.json is read by programs: the same keys in both languages
    assert (tmp_path / "zh" / "metrics.json").read_text() == (tmp_path / "en" / "metrics.json").read_text()
    figure = confusion_figure(found.confusion_normalised, found.confusion, lang="zh")
    ax = figure.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("预测类别", "真实类别") and ax.get_title().startswith("混淆矩阵")
    texts = {t.get_text() for t in mistakes_figure(found.mistakes(3), lang="zh").findobj(matplotlib.text.Text)}
    assert "置信度最高的错误" in texts and any(", 实为 " in t for t in texts)
    assert any(t.startswith("无法读取: ") for t in texts) and not any("unreadable" in t for t in texts)


def test_a_video_and_a_probe_report(tmp_path):
    timeline = pd.DataFrame({"frame": [0, 1], "time": [0.0, 1.0], "prediction": ["a", "b"],
                             "confidence": [0.9, 0.8], "prob_a": [0.9, 0.2], "prob_b": [0.1, 0.8]})
    summary = pd.DataFrame({"class": ["a", "b"], "score": [0.3, 0.2], "probability": [0.6, 0.4],
                            "mean_frame_probability": [0.55, 0.45], "frames_won": [1, 1]})
    result = VideoResult(summary=summary, timeline=timeline)
    written = report.write_video_report(result, tmp_path / "video", title="clip.mp4")
    assert [p.name for p in written] == ["summary.csv", "timeline.csv", "segments.csv", "timeline.png"]
    curve = pd.DataFrame({"shots": [1, 1, 2, 2], "trial": [0, 1, 0, 1], "probe_accuracy": [0.4, 0.5, 0.6, 0.7],
                          "zero_shot_accuracy": [0.5] * 4, "test_images": [10] * 4, "train_images": [5, 5, 10, 10]})
    curve.attrs.update(chance=0.2, class_count=5, skipped_shots=[])
    written = report.write_probe_report(curve, tmp_path / "probe")
    assert [p.name for p in written] == ["curve.csv", "summary.csv", "shots.png"]
    assert np.allclose(pd.read_csv(written[1])["probe_mean"], [0.45, 0.65])


def test_computing_modules_and_the_report_module_import_no_charts():
    code = ("import sys, clipnb.tasks.evaluation, clipnb.tasks.prompt_settings, clipnb.tasks.video, clipnb.tasks.few_shot, clipnb.report.writers, clipnb.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'seaborn') "
            "or m.endswith('_plots') or m == 'clipnb.report.plots.base'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
