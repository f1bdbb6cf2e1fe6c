"""Every user-facing word of the reports, in English and Chinese: one catalogue, looked up by key.

English ("en") is the default everywhere; Chinese ("zh") uses the wording of the article clipnb grew from
(CLIP零样本分类 + 图像比例分析报告): its chart titles (图像比例分布, 分类结果分布, 各类别平均置信度,
图像宽高比值分布), its ratio types (正方形 (1:1), 标准屏 (4:3), 宽屏 (16:9), 照片 (3:2), 其他), its CSV columns
(图像名称, 宽度, 高度, 宽高比, 比例类型, 预测类别, 最高置信度, `<class>_得分`) and its 统计总结.

Data stays English inside a results table (its columns and values are clipnb's schema, see clipnb.zeroshot.schema);
translation happens at the edges: `word` for figures and printed text, `clipnb.zeroshot.schema.localised` for a table written for
a report (CSV headers and ratio-type values).

    word("title.predictions", "zh")          # "分类结果分布"
    word("summary.images", "zh", files=3, classified=3, unreadable=0)
    localised(results, "zh")                 # a copy with the article's headers: 图像名称, 宽度, ..., cat_得分

The article's `<class>_得分` holds each class's mean cosine similarity over its templates: clipnb's
`score_<class>`. clipnb's `prob_<class>` (the probability) becomes `<class>_概率`, and `confidence` (the
winner's probability) 最高置信度.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

LANGUAGES = ("en", "zh")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
UNKNOWN = "unknown"  # the prediction of an image that fits no class (clipnb.zeroshot.outliers)

# key -> {language: text}; texts with {fields} are filled by `word(key, lang, **fields)`
WORDS: dict[str, dict[str, str]] = {
    # report and dashboard titles
    "title.report": {"en": "Zero-shot classification report", "zh": "CLIP零样本分类 + 图像比例分析报告"},
    "title.report_counts": {"en": "{images}, {classes}, mean confidence {confidence:.3f}",
                            "zh": "{image_count}张图像, {class_count}个类别, 平均置信度 {confidence:.3f}"},
    "title.report_outliers": {"en": ", {outliers} fitting no class well", "zh": ", {outliers}张与所有类别都不相符"},
    "title.duplicate_group": {"en": "group {number}: {files}", "zh": "第{number}组: {count}个文件"},
    "title.more_not_shown": {"en": " ({hidden} more not shown)", "zh": " (另有{hidden}个未显示)"},
    "note.same_bytes": {"en": "same bytes", "zh": "完全相同的文件"},
    "note.no_duplicates": {"en": "no duplicates among {files}", "zh": "{count}个文件中没有重复"},
    "title.predictions": {"en": "Predicted classes", "zh": "分类结果分布"},
    "title.confidence": {"en": "Confidence per predicted class", "zh": "各类别平均置信度"},
    "title.ratio_types": {"en": "Aspect-ratio types", "zh": "图像比例分布"},
    "title.ratio_histogram": {"en": "Width/height ratio", "zh": "图像宽高比值分布"},
    "title.probabilities": {"en": "probability of each text", "zh": "各文本的概率"},
    "title.class_probabilities": {"en": "probability of each class", "zh": "各类别的概率"},
    # axis labels, legends, captions
    "axis.images_predicted": {"en": "images predicted", "zh": "数量"},
    "axis.mean_confidence": {"en": "mean confidence when predicted", "zh": "预测为该类别时的平均置信度"},
    "axis.images": {"en": "images", "zh": "数量"},
    "axis.ratio_value": {"en": "width / height", "zh": "宽/高比值"},
    "axis.probability": {"en": "probability", "zh": "概率"},
    "legend.mean": {"en": "mean {mean:.2f}", "zh": "均值:{mean:.2f}"},
    "note.sigmoid": {"en": "each class's own sigmoid probability (SigLIP): they need not sum to 1",
                     "zh": "各类别各自的 sigmoid 概率 (SigLIP): 总和不必为 1"},
    "note.no_readable_images": {"en": "no readable images", "zh": "没有可读取的图像"},
    "note.no_images_selected": {"en": "no images selected", "zh": "未选择图像"},
    "note.unreadable": {"en": "unreadable: {reason}", "zh": "无法读取: {reason}"},
    "note.true_class": {"en": "true: {name}", "zh": "真实类别: {name}"},
    # the statistics summary (统计总结)
    "summary.heading": {"en": "", "zh": "=== 统计总结 ==="},
    "summary.images": {"en": "images: {files}, {classified} classified, {unreadable} unreadable",
                       "zh": "处理图像总数:{file_count} (已分类 {classified}, 无法读取 {unreadable})"},
    "summary.ratio_types": {"en": "ratio types:", "zh": "图像比例统计:"},
    "summary.predictions": {"en": "predictions:", "zh": "分类结果统计:"},
    "summary.count_line": {"en": "  - {name}: {count} ({percent:.1f}%)", "zh": "  - {name}: {count}张 ({percent:.1f}%)"},
    "summary.portrait": {"en": ", {count} of them portrait", "zh": ", 其中纵向{count}张"},
    "summary.unreadable_files": {"en": "unreadable files:", "zh": "无法读取的文件:"},
    "summary.outliers": {"en": "{images} fit none of the classes well (best score far below the folder's):",
                         "zh": "{count}张图像与所有类别都不太相符 (最高得分远低于该文件夹的典型值):"},
    # ratio types (clipnb.data.images.RATIO_TYPES and OTHER_RATIO), by their English value in the table
    "ratio.square (1:1)": {"en": "square (1:1)", "zh": "正方形 (1:1)"},
    "ratio.standard (4:3)": {"en": "standard (4:3)", "zh": "标准屏 (4:3)"},
    "ratio.widescreen (16:9)": {"en": "widescreen (16:9)", "zh": "宽屏 (16:9)"},
    "ratio.photo (3:2)": {"en": "photo (3:2)", "zh": "照片 (3:2)"},
    "ratio.other": {"en": "other", "zh": "其他"},
    # a ratio type holds for both orientations: how many of its images are portrait (upright)
    "note.portrait_part": {"en": "{count} portrait", "zh": "纵向{count}张"},
    # orientations (clipnb.data.images.orientation)
    "orientation.square": {"en": "square", "zh": "方形"},
    "orientation.landscape": {"en": "landscape", "zh": "横向"},
    "orientation.portrait": {"en": "portrait", "zh": "纵向"},
    # columns of the results table (clipnb.zeroshot.schema) as a report's CSV names them
    "column.path": {"en": "path", "zh": "图像名称"},
    "column.width": {"en": "width", "zh": "宽度"},
    "column.height": {"en": "height", "zh": "高度"},
    "column.aspect_ratio": {"en": "aspect_ratio", "zh": "宽高比"},
    "column.ratio_value": {"en": "ratio_value", "zh": "宽高比值"},
    "column.ratio_type": {"en": "ratio_type", "zh": "比例类型"},
    "column.nearest_ratio": {"en": "nearest_ratio", "zh": "最接近的标准比例"},
    "column.orientation": {"en": "orientation", "zh": "方向"},
    "column.prediction": {"en": "prediction", "zh": "预测类别"},
    "column.confidence": {"en": "confidence", "zh": "最高置信度"},
    "column.error": {"en": "error", "zh": "错误"},
    "column.note": {"en": "note", "zh": "备注"},
    "column.outlier": {"en": "outlier", "zh": "离群"},
    "prediction.unknown": {"en": "unknown", "zh": "未知"},
    "column.outlier_z": {"en": "outlier_z", "zh": "离群分数"},
    "class_column.score": {"en": "score_{name}", "zh": "{name}_得分"},
    "class_column.prob": {"en": "prob_{name}", "zh": "{name}_概率"},
    # columns of the summary tables (clipnb.tasks.summary)
    "column.class": {"en": "class", "zh": "类别"},
    "column.mean_score": {"en": "mean_score", "zh": "平均得分"},
    "column.mean_probability": {"en": "mean_probability", "zh": "平均概率"},
    "column.predicted": {"en": "predicted", "zh": "预测数量"},
    "column.predicted_pct": {"en": "predicted_pct", "zh": "预测占比(%)"},
    "column.mean_confidence_when_predicted": {"en": "mean_confidence_when_predicted", "zh": "预测时平均置信度"},
    "column.count": {"en": "count", "zh": "数量"},
    "column.percent": {"en": "percent", "zh": "占比(%)"},
    "column.portrait": {"en": "portrait", "zh": "其中纵向"},
    "column.text": {"en": "text", "zh": "文本"},
    "column.probability": {"en": "probability", "zh": "概率"},
    # the settings comparison (plotting.prediction_matrix, comparison_figure)
    "title.matrix": {"en": "Predictions per setting: {changed} of {images} {verb}",
                     "zh": "各设置的预测: {image_count}张图像中有{changed}张的预测改变"},
    "title.matrix_changes": {"en": "changes", "zh": ""},
    "title.matrix_change": {"en": "change", "zh": ""},
    "title.matrix_shown": {"en": " ({shown} shown)", "zh": " (显示{shown}张)"},
    "title.matrix_only": {"en": " (only those shown)", "zh": " (只显示这些)"},
    "note.unreadable_cell": {"en": "unreadable", "zh": "无法读取"},
    "note.no_changes": {"en": "no image changes prediction between settings", "zh": "没有图像的预测随设置改变"},
    "note.no_images": {"en": "no images", "zh": "没有图像"},
    # calibration against labels (clipnb.zeroshot.calibration, clipnb.report.plots.calibration)
    "title.calibration": {"en": "calibration on {held_out} held-out images (temperature {temperature:.2f} fitted on "
                                "{fitted} others)",
                          "zh": "在{held_out}张留出图像上的校准 (温度 {temperature:.2f}, 在另外{fitted}张图像上拟合)"},
    "title.reliability_before": {"en": "before: ECE {ece:.1%}", "zh": "校准前: ECE {ece:.1%}"},
    "title.reliability_after": {"en": "after temperature scaling: ECE {ece:.1%}", "zh": "温度缩放后: ECE {ece:.1%}"},
    "legend.bin_accuracy": {"en": "accuracy in the bin", "zh": "该区间的准确率"},
    "legend.gap": {"en": "gap to its mean confidence", "zh": "与平均置信度的差距"},
    "legend.perfect": {"en": "perfect calibration", "zh": "完美校准"},
    "axis.confidence": {"en": "confidence", "zh": "置信度"},
    "axis.accuracy": {"en": "accuracy", "zh": "准确率"},
    "axis.share_images": {"en": "share of images", "zh": "图像占比"},
    # an evaluation against labels (clipnb.tasks.evaluation, clipnb.report.plots.evaluation, clipnb.report.writers.write_evaluation)
    "axis.predicted": {"en": "predicted", "zh": "预测类别"},
    "axis.true": {"en": "true", "zh": "真实类别"},
    "title.confusion": {"en": "confusion matrix (colour: share of the row's images)\ncells: image counts",
                        "zh": "混淆矩阵 (颜色: 占该行图像的比例)\n单元格: 图像数量"},
    "title.confusion_shares": {"en": "confusion matrix\ncolour and cells: share of the row's images",
                               "zh": "混淆矩阵\n颜色和单元格: 占该行图像的比例"},
    "title.confusion_no_counts": {"en": "confusion matrix (colour: share of the row's images)\nno counts in the "
                                        "cells: {class_count} classes leave them too small (counts: confusion.csv)",
                                  "zh": "混淆矩阵 (颜色: 占该行图像的比例)\n{class_count}个类别, 单元格太小, 未写数量 "
                                        "(数量见 confusion.csv)"},
    "axis.row_share": {"en": "share of the row's images", "zh": "占该行图像的比例"},
    "title.mistakes": {"en": "most confident mistakes", "zh": "置信度最高的错误"},
    "caption.mistake": {"en": "{prediction} ({confidence:.0%}), truly {label}",
                        "zh": "{prediction} ({confidence:.0%}), 实为 {label}"},
    "column.label": {"en": "label", "zh": "真实类别"},
    "column.true": {"en": "true", "zh": "真实类别"},
    "column.true_probability": {"en": "true_probability", "zh": "真实类别概率"},
    "column.rank": {"en": "rank", "zh": "排名"},
    "column.evaluated": {"en": "evaluated", "zh": "参与评估"},
    "column.support": {"en": "support", "zh": "样本数"},
    "column.precision": {"en": "precision", "zh": "精确率"},
    "column.recall": {"en": "recall", "zh": "召回率"},
    "column.f1": {"en": "f1", "zh": "F1"},
    # search, video and few-shot probes (clipnb.report.plots.search, clipnb.report.plots.video, evaluation_plots.shots_figure)
    "title.search": {"en": "search: {query}", "zh": "搜索: {query}"},
    "axis.time": {"en": "time (s)", "zh": "时间 (秒)"},
    "caption.query": {"en": "query", "zh": "查询图像"},
    "title.similar_images": {"en": "similar images", "zh": "相似图像"},
    "caption.frame": {"en": "{time:.1f}s {prediction}", "zh": "{time:.1f}秒 {prediction}"},
    "legend.probe": {"en": "linear probe (mean of trials)", "zh": "线性探针 (各次试验的均值)"},
    "legend.trials": {"en": "range over trials", "zh": "各次试验的范围"},
    "legend.probe_one": {"en": "linear probe (one trial)", "zh": "线性探针 (一次试验)"},
    "legend.zero_shot": {"en": "zero-shot ({value:.2f})", "zh": "零样本 ({value:.2f})"},
    "legend.chance": {"en": "chance ({value:.2f})", "zh": "随机水平 ({value:.2f})"},
    "axis.shots": {"en": "labelled examples per class", "zh": "每个类别的标注样本数"},
    "axis.test_accuracy": {"en": "test accuracy", "zh": "测试准确率"},
    "title.shots": {"en": "linear probe vs zero-shot ({classes})", "zh": "线性探针与零样本对比 ({class_count}个类别)"},
    "column.score": {"en": "score", "zh": "得分"},
    "column.caption": {"en": "caption", "zh": "描述"},
    "column.frame": {"en": "frame", "zh": "帧"},
    "column.time": {"en": "time", "zh": "时间 (秒)"},
    "column.mean_frame_probability": {"en": "mean_frame_probability", "zh": "各帧平均概率"},
    "column.frames_won": {"en": "frames_won", "zh": "预测帧数"},
    "column.mean_embedding_score": {"en": "mean_embedding_score", "zh": "平均帧嵌入得分"},
    "column.mean_embedding_probability": {"en": "mean_embedding_probability", "zh": "平均帧嵌入概率"},
    # the video's class and what it rests on (clipnb.tasks.video.VideoResult.basis)
    "video.overall": {"en": "{name}: won {won} of {frames} sampled frames ({share:.0%})",
                      "zh": "{name}: 在{frames}个采样帧中赢得{won}帧 ({share:.0%})"},
    "column.start": {"en": "start", "zh": "开始 (秒)"},
    "column.end": {"en": "end", "zh": "结束 (秒)"},
    "column.frames": {"en": "frames", "zh": "帧数"},
    "column.mean_confidence": {"en": "mean_confidence", "zh": "平均置信度"},
    "column.shots": {"en": "shots", "zh": "每类样本数"},
    "column.trial": {"en": "trial", "zh": "试验"},
    "column.probe_accuracy": {"en": "probe_accuracy", "zh": "线性探针准确率"},
    "column.zero_shot_accuracy": {"en": "zero_shot_accuracy", "zh": "零样本准确率"},
    "column.test_images": {"en": "test_images", "zh": "测试图像数"},
    "column.train_images": {"en": "train_images", "zh": "训练图像数"},
    "column.probe_mean": {"en": "probe_mean", "zh": "线性探针准确率均值"},
    "column.probe_min": {"en": "probe_min", "zh": "线性探针准确率最小值"},
    "column.probe_max": {"en": "probe_max", "zh": "线性探针准确率最大值"},
    # the command line (clipnb.cli classify)
    "cli.run": {"en": "model {model}, {classes} x {templates}, ensemble {ensemble}",
                "zh": "模型 {model}, {class_count}个类别 x {template_count}个模板, 集成方式 {ensemble}"},
    "cli.sigmoid": {"en": "; probabilities: {note}", "zh": "; 概率: {note}"},
    "cli.wrote": {"en": "wrote {path}", "zh": "结果已导出到:{path}"},
    # warnings about classes and models (clipnb.zeroshot.scoring.class_warnings, template_note; the panel's status line)
    "warning.one_class": {"en": "only one class ({name!r}): every image gets it with probability 1, so the answer "
                                "says nothing; add at least one more class (for example 'something else')",
                          "zh": "只有一个类别 ({name}): 每张图像都以概率 1 得到它, 结果没有意义; 请至少再添加一个类别 (例如 '其他')"},
    "warning.small_world": {"en": "the {model} model knows only {subject}, so {consequence}: it knows {kinds} "
                                  "(classes such as {examples}); for real photos use a real CLIP model (for example "
                                  "--model {real}, or load_model({real!r}))",
                            "zh": "{model} 模型只认识它训练时的简单图形 (类别如 {examples_zh}), 所以{consequence}; "
                                  "真实照片请使用真正的 CLIP 模型 (例如 {real})"},
    "language.en": {"en": "English", "zh": "英文"},
    "language.zh": {"en": "Chinese", "zh": "中文"},
    "language.and": {"en": " and ", "zh": "和"},
    "warning.language": {"en": "the {model} model was trained on {known} text only, so its answers for the {name} "
                               "text given (classes, templates or texts in {name}) mean nothing: {advice}",
                         "zh": "{model} 模型只用{known}文本训练过, 所以它对给出的{name}文本 (类别、模板或文本) 的回答没有意义: "
                               "{advice}"},
    "warning.language_model": {"en": "use a model that knows {name}, such as {models} (--model {first}, or "
                                     "load_model({first!r})), or write them in {known}",
                               "zh": "请使用懂{name}的模型, 例如 {first}, 或用{known}书写"},
    "warning.language_trained": {"en": "use a model trained on {name} text, or write them in {known}",
                                 "zh": "请使用用{name}文本训练的模型, 或用{known}书写"},
    "warning.unknown_classes": {"en": "its answers for {shown} mean nothing", "zh": "它对 {shown} 的回答没有意义"},
    "warning.drawings_alike": {"en": "it cannot tell two drawings of one class apart (two drawings of a red circle "
                                     "reach a cosine of 0.994), and its near-duplicate groups may be images of one "
                                     "class, not copies of one image (docs/collection.md; copies with the same bytes "
                                     "are found by their bytes)",
                               "zh": "它分不清同一类别的两张不同图形 (两张红色圆形的余弦达到 0.994), 它找到的近似重复组可能是同一类别的"
                                     "图像, 而不是同一张图像的副本 (字节完全相同的副本按字节找到)"},
    "note.same_templates_small": {"en": "the {model} model reads only colour and shape words, so these templates give "
                                        "the same embeddings: use a real CLIP model to see templates matter",
                                  "zh": "{model} 模型只读颜色和形状的词, 所以这些模板给出相同的嵌入: "
                                        "换用真正的 CLIP 模型才能看出模板的作用"},
    "note.same_templates": {"en": "these templates give the {model} model the same text embedding for every class, "
                                  "so the template set and the ensembling change nothing here",
                            "zh": "这些模板为 {model} 模型的每个类别给出相同的文本嵌入, 所以模板和集成方式在这里不起作用"},
    "note.no_comparison_chart": {"en": "no chart of the changed predictions: no prediction changes between the "
                                       "settings",
                                 "zh": "没有预测改变的图表: 各设置之间没有预测改变"},
    # the control panel (clipnb.ui.panel.ClassifierPanel): its language choice, status and export lines, charts
    "panel.language": {"en": "Language", "zh": "语言"},
    "panel.settings": {"en": "{classes} × {templates}, {ensemble} ensembling",
                       "zh": "{class_count}个类别 × {template_count}个模板, 集成方式 {ensemble}"},
    "panel.sigmoid": {"en": "; {note}", "zh": "; {note}"},
    # {prompts}: how the prompts were had (panel.prompts_*): a reader must not take "no image" for "no prompt"
    "panel.rescored": {"en": "{settings}: {images} re-scored from their embeddings in {seconds:.2f} s "
                             "(no image encoded again{prompts})",
                       "zh": "{settings}: {image_count}张图像由已有的嵌入重新评分, 用时 {seconds:.2f} 秒 (未重新编码图像{prompts})"},
    "panel.chart_heading": {"en": "Predicted classes ({images})", "zh": "分类结果分布 ({image_count}张图像)"},
    "panel.head_class": {"en": "class", "zh": "类别"},
    "panel.head_predicted": {"en": "images predicted", "zh": "预测数量"},
    "panel.head_confidence": {"en": "mean confidence when predicted", "zh": "预测为该类别时的平均置信度"},
    "panel.not_shown": {"en": "Not shown: {hidden} that won no image ({names}).",
                        "zh": "未显示: {count}个没有预测图像的类别 ({names})。"},
    "panel.outliers": {"en": "; {images} fit no class well (marked ⚠)", "zh": "; {count}张图像与所有类别都不太相符 (标记为⚠)"},
    "panel.outliers_unknown": {"en": "; {images} fit no class well, shown as unknown",
                               "zh": "; {count}张图像与所有类别都不太相符, 显示为未知"},
    "panel.outlier": {"en": "⚠ fits none of the classes well (best score far below the folder's)",
                      "zh": "⚠ 与所有类别都不太相符 (最高得分远低于该文件夹的典型值)"},
    "panel.true_class": {"en": "(true: {name})", "zh": "(真实类别: {name})"},
    "panel.no_images": {"en": 'no images selected: pick some under "Images shown"',
                        "zh": '未选择图像: 请在 "显示的图像" 中选择'},
    "panel.exporting": {"en": "exporting… {label} to {folder}", "zh": "正在导出… {label} 到 {folder}"},
    "panel.exported": {"en": "exported {files} ({label}) to {folder}: {names}",
                       "zh": "已导出 {file_count}个文件 ({label}) 到 {folder}: {names}"},
    "panel.last_good": {"en": " (the last good settings: the entry in the status line is not applied)",
                        "zh": " (上次有效的设置: 状态栏中的输入未应用)"},
    "panel.working": {"en": "working: encoding {prompts} for {classes}…",
                      "zh": "正在处理: 为{class_count}个类别编码{prompt_count}个提示词…"},
    "panel.progress": {"en": "{done} of {total}", "zh": "已完成 {done}/{total}"},
    "panel.preparing": {"en": "preparing other template sets in the background: {done:,} of {total:,} prompts",
                        "zh": "正在后台准备其他模板集: 已完成 {done:,}/{total:,} 个提示"},
    "panel.prepare_failed": {"en": "preparing other template sets in the background stopped ({error}); the panel "
                                   "still works, and encodes new prompts when a change needs them",
                             "zh": "后台准备其他模板集已停止 ({error}); 面板仍可使用, 需要时会编码新的提示"},
    "panel.stale": {"en": "stale: the results below are from the last good settings, not the controls above",
                    "zh": "已过期: 下方结果来自上次有效的设置, 与上方控件不一致"},
    # a panel's failed callback (clipnb.ui.panel.guarded): "<doing> failed: <error>"
    "panel.failed": {"en": "{doing} failed: {error}", "zh": "{doing}失败: {error}"},
    "doing.adding a class": {"en": "adding a class", "zh": "添加类别"},
    "doing.applying the templates": {"en": "applying the templates", "zh": "应用模板"},
    "doing.choosing the images shown": {"en": "choosing the images shown", "zh": "选择显示的图像"},
    "doing.editing the templates": {"en": "editing the templates", "zh": "编辑模板"},
    "doing.exporting": {"en": "exporting", "zh": "导出"},
    "doing.listing the selection": {"en": "listing the selection", "zh": "列出所选图像"},
    "doing.recolouring the map": {"en": "recolouring the map", "zh": "重新着色地图"},
    "doing.removing classes": {"en": "removing classes", "zh": "删除类别"},
    "doing.showing the hovered image": {"en": "showing the hovered image", "zh": "显示鼠标所指的图像"},
    "doing.switching the ensembling": {"en": "switching the ensembling", "zh": "切换集成方式"},
    "doing.switching the language": {"en": "switching the language", "zh": "切换语言"},
    "doing.switching the template set": {"en": "switching the template set", "zh": "切换模板集"},
    "doing.switching unknown": {"en": "switching unknown", "zh": "切换未知图像报告"},
    # the panel's refusals and failures (clipnb.ui.panel.ClassifierPanel)
    "panel.class_empty": {"en": "class not added: the name is empty; type a class name first",
                          "zh": "未添加类别: 名称为空; 请先输入类别名称"},
    "panel.class_listed": {"en": "class not added: {name!r} is already in the list",
                           "zh": "未添加类别: {name} 已在列表中"},
    "panel.class_listed_case": {"en": "class not added: {name!r} is already in the list as {listed!r} (CLIP ignores "
                                      "letter case)",
                                "zh": "未添加类别: {name} 已作为 {listed} 在列表中 (CLIP 不区分大小写)"},
    # bad classes and templates (clipnb.zeroshot.prompts.PromptError.worded): the command line's and Python's
    # messages are the English; a Chinese panel says them in Chinese
    "prompts.no_templates": {"en": "no templates given: give at least one, such as 'a photo of a {}'",
                             "zh": "没有给出模板: 请至少给出一个, 例如 '一张{}的照片'"},
    "prompts.template_not_text": {"en": "template {template!r} is not text", "zh": "模板 {template!r} 不是文本"},
    "prompts.template_no_slot": {"en": "template {template!r} has no '{{}}' where the class name goes "
                                       "(for example 'a photo of a {{}}')",
                                 "zh": "模板 {template!r} 中没有放类别名称的 '{{}}' (例如 '一张{{}}的照片')"},
    "prompts.template_slots": {"en": "template {template!r} has {count} '{{}}'; put exactly one where the class "
                                     "name goes (for example 'a photo of a {{}}')",
                               "zh": "模板 {template!r} 中有{count}个 '{{}}'; 请只在放类别名称的位置写一个 "
                                     "(例如 '一张{{}}的照片')"},
    "prompts.template_twice": {"en": "template {template!r} is given twice; each template may appear once",
                               "zh": "模板 {template!r} 出现了两次; 每个模板只能出现一次"},
    "prompts.classes_string": {"en": "classes must be a list of names, not the single string {classes!r}",
                               "zh": "类别必须是名称的列表, 而不是单个字符串 {classes!r}"},
    "prompts.no_classes": {"en": "no classes given: give at least one class name, such as cat dog car",
                           "zh": "没有给出类别: 请至少给出一个类别名称, 例如 猫 狗 汽车"},
    "prompts.class_not_text": {"en": "class #{position} ({name!r}) is not text",
                               "zh": "第{position}个类别 ({name!r}) 不是文本"},
    "prompts.class_blank": {"en": "class #{position} is blank; every class needs a name",
                            "zh": "第{position}个类别是空的; 每个类别都需要一个名称"},
    "prompts.class_comma": {"en": "class {name!r} holds a comma; a class name is words without commas: give "
                                  "{alone!r} alone, or name the class in other words",
                            "zh": "类别 {name!r} 中有逗号; 类别名称不能含逗号: 请只给出 {alone!r}, 或换一种说法命名该类别"},
    "prompts.class_commas": {"en": "class {name!r} holds commas: give each class as its own name: {words} "
                                   "(command line: --classes {words}; Python: {python})",
                             "zh": "类别 {name!r} 中有逗号: 请把每个类别作为单独的名称给出: {words} "
                                   "(命令行: --classes {words}; Python: {python})"},
    "prompts.class_twice": {"en": "class {name!r} is given twice; each class may appear once",
                            "zh": "类别 {name!r} 出现了两次; 每个类别只能出现一次"},
    "prompts.class_twice_case": {"en": "class {name!r} is given twice (as {listed!r}; CLIP ignores letter case); "
                                       "each class may appear once",
                                 "zh": "类别 {name!r} 出现了两次 (已作为 {listed!r}; CLIP 不区分大小写); 每个类别只能出现一次"},
    "prompts.unknown_ensemble": {"en": "unknown ensembling method {ensemble!r}: use one of {methods}",
                                 "zh": "未知的集成方法 {ensemble!r}: 请使用 {methods} 之一"},
    # the panel has no truncate control, so the Chinese (panel) wording leaves that way out
    "prompts.too_long": {"en": "prompt {prompt!r} is {length} tokens, longer than the model's context of {context} "
                               "({model}); shorten the class name or template, or pass truncate=True (--truncate) "
                               "to cut it",
                         "zh": "提示词 {prompt!r} 有{length}个词元, 超过了模型的上下文长度 {context} ({model}); "
                               "请缩短类别名称或模板"},
    "panel.class_refused": {"en": "class not added: {reason}", "zh": "未添加类别: {reason}"},
    "panel.none_selected": {"en": "no class removed: select one or more classes in the list first",
                            "zh": "未删除类别: 请先在列表中选择一个或多个类别"},
    "panel.none_left": {"en": "classes not removed: that would leave none; keep at least one",
                        "zh": "未删除类别: 删除后将没有类别; 请至少保留一个"},
    "panel.still_showing": {"en": "; still showing {settings}", "zh": "; 仍显示 {settings}"},
    "panel.kept": {"en": " (the last good settings)", "zh": " (上次有效的设置)"},
    "panel.again": {"en": " (again, {times} times)", "zh": " (第{times}次)"},
    "panel.nothing_to_export": {"en": "nothing to export yet: fix the entry shown in the status line first",
                                "zh": "尚无可导出的结果: 请先更正状态栏中指出的输入"},
    "panel.no_output_folder": {"en": "no output folder: type the folder to export to in 'Output folder'",
                               "zh": "没有输出文件夹: 请在 '输出文件夹' 中输入导出的文件夹"},
    "panel.export_failed": {"en": "export to {folder} failed: {reason}. Change 'Output folder' and press Export "
                                  "again; the results in the panel are kept",
                            "zh": "导出到 {folder} 失败: {reason}。请修改 '输出文件夹' 后再次点击 导出; "
                                  "面板中的结果保留不变"},
    # the panel's controls: their labels, placeholders and tooltips (ClassifierPanel._label_controls)
    "control.classes": {"en": "Classes", "zh": "类别"},
    "control.remove": {"en": "Remove", "zh": "删除"},
    "control.remove_tip": {"en": "remove the classes selected in the list", "zh": "删除列表中选中的类别"},
    "control.new_class": {"en": "New class", "zh": "新类别"},
    "control.new_class_hint": {"en": "e.g. red circle, blue star", "zh": "例如 红色圆形, 蓝色星形"},
    "control.add_class": {"en": "Add class", "zh": "添加类别"},
    "control.add_class_tip": {"en": "Enter or Add class adds it; commas separate several",
                              "zh": "按回车或点击 添加类别 即可添加; 用逗号分隔多个类别"},
    "control.template_set": {"en": "Template set", "zh": "模板集"},
    "control.templates": {"en": "Templates", "zh": "模板"},
    "control.templates_hint": {"en": "one template per line, with {}", "zh": "每行一个模板, 用 {} 代表类别"},
    "control.ensemble": {"en": "Ensembling", "zh": "集成方式"},
    "control.ensemble_embedding_tip": {"en": "average the templates' text embeddings, then compare (the CLIP paper's way)",
                                       "zh": "先平均各模板的文本嵌入, 再比较 (CLIP 论文的做法)"},
    "control.ensemble_score_tip": {"en": "compare with each template, then average the scores",
                                   "zh": "先与每个模板比较, 再平均得分"},
    "control.unknown": {"en": "report images that fit no class as unknown", "zh": "将与所有类别都不相符的图像报告为未知"},
    "control.shown": {"en": "Images shown", "zh": "显示的图像"},
    "control.output_dir": {"en": "Output folder", "zh": "输出文件夹"},
    "control.language_en_tip": {"en": "English", "zh": "英文"},
    "control.language_zh_tip": {"en": "Chinese: the article's chart titles, summary and CSV headers",
                                "zh": "中文: 文章的图表标题、统计总结和 CSV 表头"},
    "control.export": {"en": "Export", "zh": "导出"},
    # the ensembling methods (clipnb.zeroshot.prompts.ENSEMBLE_METHODS) as the panel's toggle and status line name them
    "ensemble.embedding": {"en": "embedding", "zh": "嵌入平均"},
    "ensemble.score": {"en": "score", "zh": "得分平均"},
    # the template sets (clipnb.zeroshot.prompts.TEMPLATE_SETS) as the panel's list names them; in English their own names
    "template_set.basic": {"en": "basic", "zh": "基本"},
    "template_set.imagenet80": {"en": "imagenet80", "zh": "ImageNet 80个模板"},
    "template_set.imagenet7": {"en": "imagenet7", "zh": "ImageNet 7个模板"},
    "template_set.zh": {"en": "zh", "zh": "中文"},
    "template_set.zh_photo": {"en": "zh_photo", "zh": "中文照片"},
    "template_set.custom": {"en": "custom", "zh": "自定义"},
    # the fold under a ⚠ line that holds the traceback (clipnb.ui.panel.failure_html)
    "panel.details": {"en": "details", "zh": "详细信息"},
    # an export error's reason is English (clipnb.report.export): the Chinese line says so and folds it under 详细信息
    "panel.reason_folded": {"en": "{reason}", "zh": "原因见下方的详细信息"},
    # a class named as clipnb names images that fit no class, in any language (clipnb.zeroshot.outliers.check_unknown)
    "outliers.unknown_class": {"en": "a class is named {name!r}, so outliers cannot be reported as {unknown!r} beside "
                                     "it; rename that class, or leave unknown off",
                               "zh": "有一个类别名为 {name}, 所以无法把离群图像报告为 '{unknown_zh}' 而与它区分; "
                                     "请重命名该类别, 或关闭未知图像报告"},
    "control.export_tip": {"en": "write the CSV files and the charts to a new subfolder",
                           "zh": "将 CSV 文件和图表写入一个新的子文件夹"},
    # the map panel (clipnb.ui.map_panel.MapPanel)
    "map.colour_by": {"en": "Colour by", "zh": "着色方式"},
    "map.left_out": {"en": "{images} left out", "zh": "{count}张无法读取的图像未放入"},
    "map.principal": {"en": "only {images}: placed by principal components, not UMAP",
                      "zh": "只有{count}张图像: 按主成分放置, 而非 UMAP"},
    "map.few_neighbours": {"en": "only {count} images: {used} neighbours used instead of {asked}",
                           "zh": "只有{count}张图像: 使用{used}个近邻, 而不是{asked}个"},
    "map.export_tip": {"en": "write the map (PNG, SVG, PDF), the map and the selection (CSV)",
                       "zh": "写出地图 (PNG, SVG, PDF), 以及地图和所选图像的表格 (CSV)"},
    "map.images": {"en": "{images} on the map", "zh": "地图上有{count}张图像"},
    "map.hover_hint": {"en": "hover over a dot to see its image", "zh": "将鼠标移到点上查看它的图像"},
    "map.unreadable_now": {"en": "the image cannot be read now", "zh": "现在无法读取该图像"},
    "map.prediction": {"en": "prediction: {name} ({confidence:.3f})", "zh": "预测类别: {name} ({confidence:.3f})"},
    "map.prediction_unknown": {"en": "prediction: {name} (fits no class well; the closest had probability "
                                     "{confidence:.3f})",
                               "zh": "预测类别: {name} (与所有类别都不太相符; 最接近的类别概率为 {confidence:.3f})"},
    "map.truth": {"en": "true class: {name}", "zh": "真实类别: {name}"},
    "map.cluster": {"en": "cluster: {cluster}", "zh": "聚类: {cluster}"},
    "map.no_cluster": {"en": "none", "zh": "无"},
    "map.none_selected": {"en": "no images selected: drag a box or a lasso on the map",
                          "zh": "未选择图像: 在地图上拖出一个框或套索"},
    "map.selected": {"en": "{images} selected", "zh": "已选择{count}张图像"},
    "map.first_listed": {"en": " (the first {rows} listed; Export writes them all)",
                         "zh": " (列出前{rows}张; 导出会写出全部)"},
    "map.exporting": {"en": "exporting the map to {folder}…", "zh": "正在导出地图到 {folder}…"},
    "map.exported": {"en": "exported {files} to {folder}: {names}", "zh": "已导出 {file_count}个文件到 {folder}: {names}"},
    "map.export_failed": {"en": "export to {folder} failed: {reason}. Change 'Output folder' and press Export again",
                          "zh": "导出到 {folder} 失败: {reason}。请修改 '输出文件夹' 后再次点击 导出"},
    "column.truth": {"en": "truth", "zh": "真实类别"},
    "column.cluster": {"en": "cluster", "zh": "聚类"},
    # the columns of the panel's table (clipnb.ui.panel.image_table)
    "column.fits no class": {"en": "fits no class", "zh": "与所有类别都不相符"},
    "column.image": {"en": "image", "zh": "图像名称"},
    "column.runner-up": {"en": "runner-up", "zh": "第二类别"},
    "column.runner-up probability": {"en": "runner-up probability", "zh": "第二类别概率"},
    "column.true class": {"en": "true class", "zh": "真实类别"},
    "column.correct": {"en": "correct", "zh": "正确"},
    # a video whose frames tie: the tie first, then what broke it (clipnb.tasks.video.VideoResult.basis)
    # {mine} and {theirs} come with as many decimals as it takes to tell them apart (VideoResult.basis)
    "video.tie_first": {"en": "tie: {names} won {won} of {frames} sampled frames each; {name} leads by mean frame "
                              "probability, {mine} against {theirs}",
                        "zh": "平局: {names}在{frames}个采样帧中各赢得{won}帧; {name}以各帧平均概率领先, "
                              "{mine} 对 {theirs}"},
    # the predictions chart's x label when classes that won no image are left out: one space, not two
    "axis.images_predicted_hidden": {"en": "images predicted ({hidden} that won no image not shown)",
                                     "zh": "数量 (未显示{count}个没有预测图像的类别)"},
    # the notebooks' printed lines and controls (scripts/build_notebooks.py): every line a notebook prints in LANG
    "notebook.model": {"en": "model: {model}; outputs go to {folder}", "zh": "模型: {model}; 输出写入 {folder}"},
    "notebook.image": {"en": "image: {path}", "zh": "图像: {path}"},
    "notebook.classes": {"en": "; {classes}", "zh": "; {class_count}个类别"},
    "notebook.right": {"en": "{right} of {labelled} labelled images right ({share:.0%})",
                       "zh": "{labelled}张已标注图像中{right}张预测正确 ({share:.0%})"},
    "notebook.first_rows": {"en": "the first {shown} of {images} (all of them go to {file}):",
                            "zh": "共{image_count}张图像, 显示前{shown}张 (全部写入 {file}):"},
    "notebook.changed": {"en": "{changed} of {predictions} change between the settings",
                         "zh": "{prediction_count}个预测中有{changed}个随设置改变"},
    "notebook.changed_shown": {"en": "; the first {shown} shown (all in {file})",
                               "zh": "; 显示前{shown}个 (全部写入 {file})"},
    "notebook.templates_differ": {"en": "the templates chosen above give each class different embeddings",
                                  "zh": "上面选择的模板为每个类别给出不同的嵌入"},
    "notebook.labelled": {"en": "{images} of {classes} in {folder}", "zh": "{folder} 中有{class_count}个类别的{image_count}张已标注图像"},
    "notebook.unreadable": {"en": "; {count} unreadable", "zh": "; {count}张无法读取"},
    "notebook.evaluated_with": {"en": "templates {templates}, ensemble {ensemble}", "zh": "模板 {templates}, 集成方式 {ensemble}"},
    "notebook.no_mistakes": {"en": "no mistakes: every readable labelled image is predicted right",
                             "zh": "没有错误: 每张可读取的已标注图像都预测正确"},
    "notebook.compare_hint": {"en": "to compare models, set compare_with = [\"open_clip:ViT-B-32,laion2b_s34b_b79k\", ...] "
                                    "in the parameters",
                              "zh": "要比较模型, 请在参数中设置 compare_with = [\"open_clip:ViT-B-32,laion2b_s34b_b79k\", ...]"},
    "notebook.indexed": {"en": "{images} indexed from {folder}", "zh": "已从 {folder} 索引{image_count}张图像"},
    "notebook.search": {"en": "search", "zh": "搜索"},
    "notebook.top": {"en": "top", "zh": "显示数量"},
    "notebook.video": {"en": "{frames} sampled; the video as a whole: {basis}",
                       "zh": "采样{frame_count}帧; 整个视频: {basis}"},
    "notebook.skipped_shots": {"en": "skipped shots {shots}: some class has too few training images",
                               "zh": "跳过的每类样本数 {shots}: 有类别的训练图像太少"},
    "notebook.no_outliers": {"en": "no image stands out", "zh": "没有离群的图像"},
    "notebook.written": {"en": "written:", "zh": "已写出:"},
    # notebook 08 (scale out): the cluster, the store and the index
    "notebook.store": {"en": "model: {model}; the store is {store}", "zh": "模型: {model}; 存储位置 {store}"},
    "notebook.workers": {"en": "{workers}; dashboard: {link}", "zh": "{count}个工作进程; 仪表板: {link}"},
    "notebook.cluster_run": {"en": "{images} in {shards} on {workers}: {encoded} embedded, {from_store} read from the "
                                   "store, in {seconds:.1f} s",
                             "zh": "{image_count}张图像分成{shard_count}个分片, 在{worker_count}个工作进程上: 嵌入{encoded}张, "
                                   "从存储读取{from_store}张, 用时 {seconds:.1f} 秒"},
    "notebook.same_rows": {"en": "same rows, order, predictions, errors and notes: {same}; largest score difference: "
                                 "{largest:.1e}",
                           "zh": "行、顺序、预测、错误和备注都相同: {same}; 最大得分差: {largest:.1e}"},
    "notebook.store_again": {"en": "{from_store} of {images} read from the store, {encoded} embedded, in {seconds:.1f} s",
                             "zh": "{image_count}张图像中{from_store}张从存储读取, 嵌入{encoded}张, 用时 {seconds:.1f} 秒"},
    "notebook.stored": {"en": "{rows} rows; columns: {columns}; embeddings of {size} numbers",
                        "zh": "{rows}行; 列: {columns}; 每个嵌入{size}个数"},
    "notebook.index": {"en": "{images} in the index", "zh": "索引中有{image_count}张图像"},
    # notebook 09: the calibration's held-out images (Calibration.headline) and all of them, each line says which
    "notebook.confidence_all": {"en": "on all {images} (fitted and held-out together): accuracy {accuracy:.1%}; mean "
                                      "confidence {before:.1%} before, {after:.1%} with temperature {temperature:.2f}",
                                "zh": "在全部{image_count}张已标注图像上 (拟合的和留出的合在一起): 准确率 {accuracy:.1%}; "
                                      "平均置信度 校准前 {before:.1%}, 温度 {temperature:.2f} 下 {after:.1%}"},
    # a video whose frames tie on mean frame probability too, at every digit shown (clipnb.tasks.video.VideoResult.basis)
    "video.tie_exact": {"en": "tie: {names} won {won} of {frames} sampled frames each, with the same mean frame "
                              "probability ({mine}); {name} is named because it comes first in the class list",
                        "zh": "平局: {names}在{frames}个采样帧中各赢得{won}帧, 各帧平均概率也相同 ({mine}); "
                              "选择{name}是因为它在类别列表中排在前面"},
    # the panel's status: what was encoded for the prompts of the settings shown (clipnb.ui.panel.ClassifierPanel)
    "panel.prompts_encoded": {"en": "; {prompts} encoded", "zh": "; 编码了{prompt_count}个提示词"},
    "panel.prompts_ahead": {"en": "; {prompts} prepared ahead in the background, read from memory",
                            "zh": "; {prompt_count}个提示词已在后台提前准备, 从内存读取"},
    "panel.prompts_memory": {"en": "; every prompt read from memory", "zh": "; 所有提示词从内存读取"},
    # the notebooks' ⚠ line for a warning (clipnb.ui.panel.warnings_said)
    "note.warning": {"en": "⚠ {message}", "zh": "⚠ {message}"},
    # the one-line notes a notebook prints from the package (issue 24: the Chinese notebooks completely Chinese)
    # which images of a folder a run uses (clipnb.data.images.folder_note)
    "folder.images": {"en": "{images} in {folder}", "zh": "{folder} 中有{count}张图像"},
    "folder.recursive": {"en": "{images} in {folder}, subfolders included ({below} of them in subfolders)",
                         "zh": "{folder} 中有{count}张图像, 包括子文件夹 (其中{below}张在子文件夹中)"},
    "folder.not_included": {"en": "{images} in {folder} (subfolders not included: {more} in subfolders{how})",
                            "zh": "{folder} 中有{count}张图像 (未包括子文件夹: 子文件夹中另有{below}张图像{how})"},
    "folder.how": {"en": "; add {option} to include them", "zh": "; 设置 {option} 以包括它们"},
    "folder.unread": {"en": "; {subfolders} could not be read ({shown}): their images are not included; check their "
                            "permissions",
                      "zh": "; {count}个子文件夹无法读取 ({shown}): 其中的图像未包括; 请检查它们的权限"},
    "folder.unread_more": {"en": " and {count} more", "zh": " 等另外{count}个"},
    # notebooks name the switch as their parameter (folder_note's option)
    "notebook.recursive_option": {"en": "recursive = True (parameters)", "zh": "参数 recursive = True"},
    # an embedding run (clipnb.embed.pipeline.EmbeddedImages.describe)
    "embed.count": {"en": "{images}", "zh": "{count}张图像"},
    "embed.describe": {"en": "{count} images: {hits} from the cache, {encoded} encoded, {failed} unreadable, in "
                             "{seconds:.1f} s",
                       "zh": "{count}张图像: {hits}张来自缓存, 编码{encoded}张, {failed}张无法读取, 用时 {seconds:.1f} 秒"},
    # an evaluation against labels (clipnb.tasks.evaluation.Evaluation.headline)
    "evaluation.headline": {"en": "{evaluated} images ({unreadable} unreadable), {classes} classes: acc@1 {top1:.1f}%, "
                                  "acc@{k} {topk:.1f}%, mean per-class recall {recall:.1f}%",
                            "zh": "{evaluated}张图像 ({unreadable}张无法读取), {classes}个类别: 前1准确率 {top1:.1f}%, "
                                  "前{k}准确率 {topk:.1f}%, 各类别平均召回率 {recall:.1f}%"},
    # temperature scaling (clipnb.zeroshot.calibration.Calibration.headline)
    "calibration.over": {"en": "over-confident", "zh": "过于自信"},
    "calibration.under": {"en": "under-confident", "zh": "不够自信"},
    "calibration.even": {"en": "as confident as accurate on average", "zh": "平均而言置信度与准确率相当"},
    "calibration.headline": {"en": "temperature {temperature:.2f}, fitted on {fitted} images; on {held_out} others the "
                                   "model was {direction} (accuracy {accuracy:.1f}%, mean confidence {before:.1f}%), and "
                                   "the expected calibration error goes from {ece_before:.1f}% to {ece_after:.1f}% (mean "
                                   "confidence {after:.1f}%)",
                             "zh": "温度 {temperature:.2f}, 在{fitted}张图像上拟合; 在另外{held_out}张图像上模型{direction} "
                                   "(准确率 {accuracy:.1f}%, 平均置信度 {before:.1f}%), 预期校准误差从 {ece_before:.1f}% "
                                   "变为 {ece_after:.1f}% (平均置信度 {after:.1f}%)"},
    # images that fit no class (clipnb.zeroshot.outliers.outlier_note)
    "outliers.note": {"en": "{images} {verb} none of the classes well (best score far below the folder's){reported}",
                      "zh": "{count}张图像与所有类别都不太相符 (最高得分远低于该文件夹的典型值){reported}"},
    "outliers.reported": {"en": ": reported as unknown", "zh": ": 报告为未知"},
    # near duplicates (clipnb.tasks.duplicates.duplicate_summary)
    "duplicates.none": {"en": "no duplicates among {files} (threshold {threshold:g})",
                        "zh": "{count}个文件中没有重复 (阈值 {threshold:g})"},
    "duplicates.summary": {"en": "{groups} of duplicates: {files} of {total}, {exact} of them exact copies (threshold "
                                 "{threshold:g})",
                           "zh": "{group_count}组重复: {total}个文件中的{file_count}个, 其中{exact}个是完全相同的副本 "
                                 "(阈值 {threshold:g})"},
    # models compared on one folder (clipnb.tasks.model_comparison.ModelComparison.headline)
    "models.unlabelled": {"en": "{models} models on {images} images, no labels: only their agreement is measured "
                                "(give labelled images to compare accuracy)",
                          "zh": "{models}个模型, {images}张图像, 没有标注: 只衡量它们的一致程度 (给出已标注图像才能比较准确率)"},
    "models.best": {"en": "{models} models on {images} labelled images; best acc@1: {best} ({accuracy:.1%})",
                    "zh": "{models}个模型, {images}张已标注图像; 前1准确率最高: {best} ({accuracy:.1%})"},
    # a file that cannot be written (clipnb.data.files.ExportError: str() is the English, `said(lang)` any language)
    "export.retry": {"en": "the results are still in memory: fix this and call the export again",
                     "zh": "结果仍在内存中: 解决此问题后再次导出即可"},
    "export.failed": {"en": "cannot write {target}: {reason}; {advice} ({retry})",
                      "zh": "无法写入 {target} (系统错误 {code}): {advice} ({retry})"},
    "export.advice.read_only": {"en": "the folder {parent} is read-only or not yours; choose another output path",
                                "zh": "文件夹 {parent} 是只读的或不属于你; 请选择另一个输出路径"},
    "export.advice.full": {"en": "the disk is full; free some space or choose another output path",
                           "zh": "磁盘已满; 请释放一些空间或选择另一个输出路径"},
    "export.advice.not_folder": {"en": "a part of the output path is a file, not a folder; choose another output path",
                                 "zh": "输出路径中有一部分是文件, 不是文件夹; 请选择另一个输出路径"},
    "export.advice.is_folder": {"en": "{target} is a folder; give a file name such as {example}",
                                "zh": "{target} 是一个文件夹; 请给出文件名, 例如 {example}"},
    "export.advice.other": {"en": "choose another output path", "zh": "请选择另一个输出路径"},
    "export.is_folder": {"en": "cannot write {target}: it is a folder; give a file name such as {example}",
                         "zh": "无法写入 {target}: 它是一个文件夹; 请给出文件名, 例如 {example}"},
    "export.not_regular": {"en": "cannot write {shown}: it is {kind}, not a regular file, and writing would replace "
                                 "it; choose another output path",
                           "zh": "无法写入 {shown}: 它是{kind}, 不是普通文件, 写入会替换它; 请选择另一个输出路径"},
    "export.link": {"en": "{target} (a link to {real})", "zh": "{target} (指向 {real} 的链接)"},
    "export.kind.folder": {"en": "a folder", "zh": "文件夹"},
    "export.kind.fifo": {"en": "a named pipe (FIFO)", "zh": "命名管道 (FIFO)"},
    "export.kind.device": {"en": "a device", "zh": "设备"},
    "export.kind.socket": {"en": "a socket", "zh": "套接字"},
    "export.kind.other": {"en": "not a regular file", "zh": "非普通文件"},
    "export.kind.file": {"en": "a file", "zh": "文件"},
    "export.parent_file": {"en": "cannot write {target}: {parent} is a file, not a folder; choose another output path",
                           "zh": "无法写入 {target}: {parent} 是文件, 不是文件夹; 请选择另一个输出路径"},
    "export.read_only": {"en": "cannot write {target}: the folder {parent} is read-only or not yours; choose another "
                               "output path",
                         "zh": "无法写入 {target}: 文件夹 {parent} 是只读的或不属于你; 请选择另一个输出路径"},
    "export.image_name": {"en": "cannot write a CSV to {shown}: the name is an image's, and writing would overwrite "
                                "the picture; give a name ending in .csv",
                          "zh": "无法把 CSV 写入 {shown}: 这是图像的文件名, 写入会覆盖该图像; 请给出以 .csv 结尾的文件名"},
    "export.input": {"en": "cannot write {target}: it is {source}, an input of this run, and writing would overwrite "
                           "it; choose another output path",
                     "zh": "无法写入 {target}: 它是本次运行的输入 {source}, 写入会覆盖它; 请选择另一个输出路径"},
    "export.folder_kind": {"en": "cannot write to the folder {folder}: it is {kind}; give the name of a folder, new or "
                                 "existing",
                           "zh": "无法写入文件夹 {folder}: 它是{kind}; 请给出一个文件夹的名称 (新的或已有的)"},
}


def check_lang(lang: str) -> str:
    """`lang` when it is a known language ("en" or "zh"); otherwise a ValueError naming the known ones."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


def word(key: str, lang: str = "en", **fields) -> str:
    """The text of `key` in `lang`, with its {fields} filled from `fields`.

    An unknown key or language raises (KeyError, ValueError) with the known ones in the message.
    """
    check_lang(lang)
    try:
        texts = WORDS[key]
    except KeyError:
        raise KeyError(f"unknown word {key!r}; known words: {', '.join(sorted(WORDS))}") from None
    text = texts[lang]
    return text.format(**fields) if fields else text


class Phrase(NamedTuple):
    """A catalogue entry and its fields, to be said later in any language (an error's message, worded where it is
    raised and said where it is shown); a field that is a Phrase is said in the same language."""

    key: str
    fields: dict

    def said(self, lang: str = "en") -> str:
        return word(self.key, lang, **{name: value.said(lang) if isinstance(value, Phrase) else value
                                       for name, value in self.fields.items()})


def sentences(parts: Sequence[str], lang: str = "en") -> str:
    """Texts said one after another as sentences, empty parts left out: in English each starts with a capital
    letter (the catalogue's texts are fragments that start with a lowercase word) and they are joined by ". ";
    Chinese has no capitals (a model name such as demo stays as it is) and joins them by "。"."""
    check_lang(lang)
    if lang == "zh":
        return "。".join(p for p in parts if p)
    return ". ".join(p[:1].upper() + p[1:] for p in parts if p)


def template_set_name(name: str, lang: str = "en") -> str:
    """A template set (clipnb.zeroshot.prompts.TEMPLATE_SETS, or "custom") as a panel names it in `lang`; a set the
    catalogue does not know keeps its own name."""
    check_lang(lang)
    key = f"template_set.{name}"
    return WORDS[key][lang] if key in WORDS else name


def ratio_type_name(value, lang: str = "en"):
    """A ratio type of the table ("photo (3:2)", "other") in `lang`; any other value (NaN, None) as it is."""
    check_lang(lang)
    return WORDS[f"ratio.{value}"][lang] if isinstance(value, str) and f"ratio.{value}" in WORDS else value


def orientation_name(value, lang: str = "en"):
    """An orientation of the table ("landscape") in `lang`; any other value as it is."""
    check_lang(lang)
    key = f"orientation.{value}"
    return WORDS[key][lang] if isinstance(value, str) and key in WORDS else value


def prediction_name(value, lang: str = "en", classes: Sequence[str] = ()):
    """A prediction as shown in `lang`: clipnb's word for "no class" ("unknown", clipnb.zeroshot.outliers.UNKNOWN) in
    the language's word, unless it is one of the `classes`; a class name as it is."""
    check_lang(lang)
    return word("prediction.unknown", lang) if value == UNKNOWN and UNKNOWN not in classes else value


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    """The count with the word in the number it needs: plural(1, "class") is "1 class",
    plural(2, "class") is "2 classes", plural(3, "image") is "3 images".

    Words ending in s, x, z, ch or sh take "es", others "s"; give `plural_form` for any other word.
    """
    if count == 1:
        return f"{count} {word}"
    if plural_form is None:
        plural_form = word + ("es" if word.endswith(("s", "x", "z", "ch", "sh")) else "s")
    return f"{count} {plural_form}"


# the few words of the map, in the languages of clipnb.words
MAP_WORDS = {
    "title": {"en": "Embedding map: {count} images, coloured by {colour}", "zh": "嵌入分布图: {count}张图像, 按{colour}着色"},
    "prediction": {"en": "prediction", "zh": "预测类别"},
    "truth": {"en": "true class", "zh": "真实类别"},
    "cluster": {"en": "cluster", "zh": "聚类"},
    "cluster_name": {"en": "cluster {number}", "zh": "聚类 {number}"},
    "none.prediction": {"en": "unreadable", "zh": "无法读取"},
    "none.truth": {"en": "no true class", "zh": "无真实类别"},
    "none.cluster": {"en": "no cluster", "zh": "无聚类"},
    "more": {"en": "+{count} more", "zh": "另有{count}项"},
    "other": {"en": "other {count} classes (grey)", "zh": "其余{count}个类别 (灰色)"},
}


def map_word(key: str, lang: str = "en", **fields) -> str:
    return MAP_WORDS[key][check_lang(lang)].format(**fields)


def __getattr__(name: str):
    """Names that moved out of this module (clipnb._moved.NAMES), for one release, with a warning."""
    from ._moved import moved_name

    return moved_name(__name__, name)
