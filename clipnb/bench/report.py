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
        "the process and its workers)",
    ]
    names = {"a_seed": "(a) seed loop, one at a time", "b_cold": "(b) clipnb cold (empty cache)",
             "c_warm": "(c) clipnb warm (new classes)", "d_model": "(d) model only, batch %d",
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
    lines += [
        f"warm re-scoring of {result['n']} images, {len(WARM_CLASSES)} classes x 3 templates, text encoding "
        f"included: {result['rescore']['seconds']:.3f} s in memory, {result['c_warm']['seconds']:.3f} s "
        f"from the cache (goal < 1 s)",
        "",
        "checks:",
        f"  exact pipeline vs seed loop: max |diff| {checks['exact_vs_seed_max_abs']:.2e} "
        f"(<= {checks['exact_tolerance']:g}): {_ok(checks['exact_ok'])}",
        f"  warm vs cold: max |diff| {checks['warm_vs_cold_max_abs']:.2e}, table equal to cold re-scored "
        f"{checks['warm_table_equals_rescored_cold']}: {_ok(checks['warm_ok'])}",
        f"  fast decoding vs seed loop: max 1-cos {checks['cold_vs_seed_max_1_minus_cos']:.2e} "
        f"(tolerance {checks['draft_tolerance']:g}): {_ok(checks['draft_ok'])}",
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


def _ok(flag: bool) -> str:
    return "ok" if flag else "FAILED"


