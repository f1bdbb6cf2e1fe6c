"""The benchmark's report: `format_report` turns `run_benchmark`'s dict into text."""
from __future__ import annotations

from .measure import WARM_CLASSES


def format_report(result: dict) -> str:
    """The printed table: images/s, seconds, peak memory, ratios, re-scoring time and the checks."""
    sizes = ", ".join(f"{count} x {size}" for size, count in result["sizes"].items())
    device = result["gpu"] or f"{result['cpus']} CPU cores ({result['machine']})"
    streams, threads = result["streams"]
    decoding = (f"decoding in {result['workers']} worker processes beside the model" if result["workers"] else
                f"{streams} streams, each decoding a batch and then encoding it on {threads} torch thread(s)")
    lines = [
        f"clipnb benchmark: {result['n']} JPEGs ({sizes}) on {device}, {result.get('model', 'random-weight ViT-B/32')}",
        f"batch {result['batch_size']}, {decoding}, draft factor "
        f"{result['draft_factor']}; load average before {result['load_before']}, after {result['load_after']}",
        f"(a), (b) and (d) ran in {result['rounds']} interleaved rounds; the seed loop on the first "
        f"{result['a_seed']['images']} photos",
        "",
        f"{'':<34}{'images':>7}{'seconds':>9}{'images/s':>10}{'peak MB':>9}  (peak: {result['b_cold']['memory_kind']} of "
        "the process and its workers, sampled)",
    ]
    names = {"a_seed": "(a) seed loop, one at a time", "b_cold": "(b) clipnb cold (empty cache)",
             "c_warm": "(c) clipnb warm (new classes)", "f_cluster": "(f) cold on a local Dask cluster",
             "d_model": "(d) model only, batch %d",
             "d_streams": "(d') model only in streams, batch %d"}
    for key, label in names.items():
        row = result.get(key)
        if row is None:
            continue
        if key.startswith("d_"):
            lines.append(f"{label % row['batch_size']:<34}{'':>7}{'':>9}{row['images_per_s']:>10.1f}"
                         f"{row['peak_memory_mb']:>9.0f}")
        else:
            lines.append(f"{label:<34}{row['images']:>7}{row['seconds']:>9.2f}{row['images_per_s']:>10.1f}"
                         f"{row['peak_memory_mb']:>9.0f}")
    ratios, checks = result["ratios"], result["checks"]

    def by_batch(key):
        return ", ".join(f"{k}: {v:.1f}" for k, v in result[key]["by_batch"].items())

    lines += ["", f"cold / seed loop   {ratios['cold_over_seed']:.2f}x   (goal >= 3x)",
              f"cold / model only  {100 * ratios['cold_over_model']:.0f}%    (goal >= 85%; (d) one forward pass at a "
              f"time on every core, images/s by batch: {by_batch('d_model')})"]
    if "cold_over_streams" in ratios:
        lines.append(f"cold / (d')        {100 * ratios['cold_over_streams']:.0f}%    ((d') single-threaded passes side "
                     f"by side, as clipnb runs them, by batch: {by_batch('d_streams')}; a stricter limit)")
    if "cluster_over_cold" in ratios:
        lines.append(f"cluster / cold     {100 * ratios['cluster_over_cold']:.0f}%    (goal >= 85%; (f) the same photos on "
                     f"a LocalCluster of {result['f_cluster']['workers']} worker processes, one stream each)")
    if "cold_over_budget" in ratios:
        where = result["where"]
        lines.append(f"cold / budget      {100 * ratios['cold_over_budget']:.0f}%    (goal >= 90%; budget "
                     f"{where['budget_images_per_s']:.1f} images/s: {where['cores']} cores / "
                     f"{where['budget_ms']:.1f} core-ms per photo, the stages timed alone below)")
    if "budget_over_streams" in ratios:
        lines.append(f"budget / (d')      {100 * ratios['budget_over_streams']:.0f}%    (the most cold / (d') can be "
                     "with every core busy: decoding costs cores that (d') spends on the model)")
    lines += [
        f"warm re-scoring of {result['n']} images, {len(WARM_CLASSES)} classes x 3 templates, text encoding "
        f"included: {result['rescore']['seconds']:.3f} s in memory, {result['c_warm']['seconds']:.3f} s "
        f"from the cache (goal < 1 s)",
        *where_table(result.get("where")),
        "",
        "checks:",
        f"  exact pipeline vs seed loop: max |diff| {checks['exact_vs_seed_max_abs']:.2e} "
        f"(<= {checks['exact_tolerance']:g}): {_ok(checks['exact_ok'])}",
        f"  warm vs cold: max |diff| {checks['warm_vs_cold_max_abs']:.2e}, table equal to cold re-scored "
        f"{checks['warm_table_equals_rescored_cold']}: {_ok(checks['warm_ok'])}",
        f"  fast decoding vs seed loop: max 1-cos {checks['cold_vs_seed_max_1_minus_cos']:.2e} "
        f"(tolerance {checks['draft_tolerance']:g}): {_ok(checks['draft_ok'])}",
        *([f"  cluster vs cold: rows equal {checks['cluster_rows_equal']}, max |diff| "
           f"{checks['cluster_vs_cold_max_abs']:.2e} (<= 1e-06): {_ok(checks['cluster_ok'])}"]
          if "cluster_ok" in checks else []),
        "",
        "draft decoding vs exact decoding (1 - cosine of embeddings):",
        f"  {'factor':>6} {'size':>10} {'images':>6} {'max 1-cos':>10} {'mean':>10} {'max rel.':>9}"
        f" {'pixel max':>10} {'pixel rms':>10}",
    ]
    lines += [f"  {r['factor']:>6} {r['size']:>10} {r['images']:>6} {r['max_1_minus_cos']:>10.2e} "
              f"{r['mean_1_minus_cos']:>10.2e} {r['max_relative_distance']:>9.3f} {r['pixel_max_abs']:>10.3f}"
              f" {r['pixel_rms']:>10.4f}" for r in result["draft"]]
    lines.append("  (max rel.: distance to the exact embedding / median distance between two photos' embeddings)")
    return "\n".join(lines)


def where_table(where: dict | None) -> list[str]:
    """Where the cold run's time went, stage by stage, in core-ms per photo, beside each stage alone."""
    if not where:
        return []
    lines = ["", f"where the time went in (b), core-ms per photo (CPU time; {where['cores']} cores x seconds in "
                 f"all), beside each stage timed alone on one thread ({where['alone_photos']} photos):",
             f"  {'stage':<30}{'alone':>8}{'in (b)':>9}{'(b) - alone':>13}{'page faults':>13}"]
    for stage, alone in where["alone_ms"].items():
        cold = where["cold_ms"][stage]
        lines.append(f"  {stage:<30}{alone:>8.1f}{cold:>9.1f}{cold - alone:>+13.1f}"
                     f"{where['page_faults'][stage]:>13.0f}")
    rows = [("other work of the process", where["other_ms"], "bookkeeping, progress bar, memory sampler"),
            ("cores idle or waiting", where["idle_ms"], "start and end of each call, GIL, other processes"),
            ("outside embed_images", where["outside_ms"], "text head and results table")]
    lines += [f"  {label:<30}{'':>8}{value:>9.1f}{'':>13}  ({why})" for label, value, why in rows]
    lines.append(f"  {'total':<30}{where['budget_ms']:>8.1f}{where['total_ms']:>9.1f}"
                 f"{where['total_ms'] - where['budget_ms']:>+13.1f}")
    return lines


def _ok(flag: bool) -> str:
    return "ok" if flag else "FAILED"


