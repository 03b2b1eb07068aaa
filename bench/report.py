"""The printed table and the JSON file."""

from __future__ import annotations

import json
import os

from bench.cases import FLOOR, REPLICA


def _fmt(x, spec: str, missing: str = "-") -> str:
    return missing if x is None else format(x, spec)


def _excess(c: dict, row: dict) -> str:
    """State bytes above the algorithm's minimum ("-" for the stateless floor step)."""
    if c["state_bytes"] == 0:
        return "-"
    return str(c["state_bytes"] - row["min_state_bytes"])


def _fresh_mb(c: dict) -> float | None:
    fresh = c.get("fresh_bytes_per_step")
    return None if fresh is None else fresh / 1e6


def _spread(row: dict, name: str, key: str = "ratio_quartiles") -> str:
    """An interval of the round-by-round ratios to optax, ``lo-hi``: the interquartile
    range, or with ``key="ratio_ci95"`` the 95% confidence interval of their median."""
    q = row.get(key, {}).get(name)
    return "" if q is None else f"{q[0]:.2f}-{q[1]:.2f}"


def _static(row: dict, name: str) -> str:
    """Kernels, bytes moved and flops of the compiled step over optax's, ``k / b / f``."""
    r = row.get("static_ratio", {}).get(name)
    if not r:
        return "-"
    return " / ".join(_fmt(r[key], ".2f") for key in ("kernels", "bytes_accessed", "flops"))


def _millions(x) -> str:
    return "-" if x is None else f"{x / 1e6:.1f}"


def table(result: dict) -> str:
    """A fixed-width table: per case, each contender's step time, ratio, GB/s, compile, memory."""
    probe = result["probe"]["gbps"]
    lines = [
        (
            f"device {result['meta']['device']}  probe {probe:.1f} GB/s  "
            f"load {result['meta']['loadavg_start'][0]:.1f} -> "
            f"{result['meta']['loadavg_end'][0]:.1f}"
        ),
        "",
    ]
    head = (
        f"{'workload':<13}{'optimizer':<20}{'contender':<20}{'ms/step':>9}{'ratio':>7}"
        f"{'95% CI':>11}{'kernels':>8}"
        f"{'GB/s':>7}{'%probe':>7}{'compile s':>10}{'state MB':>9}{'+B':>7}{'peak/fp':>8}"
        f"{'fresh MB':>9}"
    )
    lines += [head, "-" * len(head)]
    for row in result["results"]:
        first = True
        for name, c in row["contenders"].items():
            label = (row["workload"], row["optimizer"]) if first else ("", "")
            first = False
            if c["status"] != "ok":
                lines.append(f"{label[0]:<13}{label[1]:<20}{name:<20}  {c['status']}")
                continue
            ratio = row["ratio"].get(name)
            lines.append(
                f"{label[0]:<13}{label[1]:<20}{name:<20}{c['step_ms']:>9.3f}"
                f"{_fmt(ratio, '.2f'):>7}{_spread(row, name, 'ratio_ci95'):>11}"
                f"{c.get('kernels', '-'):>8}{c['gbps']:>7.1f}{100 * c['gbps'] / probe:>6.0f}%"
                f"{c['lower_s'] + c['compile_s']:>10.2f}{c['state_bytes'] / 1e6:>9.2f}"
                f"{_excess(c, row):>7}"
                f"{_fmt(c['peak_over_footprint'], '.2f'):>8}"
                f"{_fmt(_fresh_mb(c), '.1f'):>9}"
            )
    comp = result.get("compile")
    if comp:
        lines += [
            "",
            (
                f"compile time, {comp['optimizer']} on {comp['workload']} "
                f"({comp['leaves']} leaves), trace+lower+compile, median of {comp['repeats']} "
                "(ratio: median of the repeats' ratios to optax):"
            ),
        ]
        for name, c in comp["contenders"].items():
            if c.get("status", "ok") != "ok":
                lines.append(f"  {name:<20} {c['status']}")
                continue
            lines.append(
                f"  {name:<20} {c['median_s']:7.2f} s  (lower {c['lower_s']:.2f} s, "
                f"compile {c['compile_s']:.2f} s)  ratio {_fmt(comp['ratio'].get(name), '.2f')}"
                f"   init {_fmt(c.get('init_s'), '.2f')} s, ratio "
                f"{_fmt(comp.get('init_ratio', {}).get(name), '.2f')}"
            )
    lines += [
        "",
        (
            "ratio = median over rounds of contender / optax; each contender's step compiled "
            f"and run in {result['meta'].get('processes', 1)} processes of its own (its time "
            "in a round the geometric mean over them), every round timing each process once, "
            f"on buffers allocated afresh {result['meta'].get('trials', 1)} times; 95% CI = "
            f"distribution-free interval of that median; '{REPLICA}' is optax's second "
            "process against its first: the scatter between identical programs; "
            "GB/s = minimal traffic / median step time "
            "(12 B/param for the floor step); "
            "+B = state bytes above the algorithm's minimum; peak/fp = planned peak memory / "
            "(params + grads + state); fresh MB = memory touched for the first time per step "
            "(page faults: the step's temporaries, allocated afresh each call)."
        ),
    ]
    section = result.get("preconditioners")
    if section:
        lines += ["", *preconditioners_lines(section)]
    return "\n".join(lines)


def _settings_lines(section: dict) -> list[str]:
    return [
        f"  {name}: " + ", ".join(f"{k}={v}" for k, v in kw.items())
        for name, kw in section["settings"].items()
    ]


def preconditioners_lines(section: dict) -> list[str]:
    """The preconditioners section as fixed-width lines: per optimizer, gradxform and its
    reference, step time (median and mean), compile time, state bytes, gradxform / reference."""
    lines = [
        (
            f"preconditioners on {section['workload']} ({section['leaves']} leaves, "
            f"{section['params'] / 1e6:.1f}M params, float32), same settings on both sides:"
        ),
        *_settings_lines(section),
        "",
    ]
    head = (
        f"{'optimizer':<11}{'contender':<38}{'ms/step':>10}{'mean ms':>10}{'compile s':>10}"
        f"{'state MB':>10}   gradxform / reference"
    )
    lines += [head, "-" * len(head)]
    for row in section["rows"]:
        first = True
        for name, c in row["contenders"].items():
            label = row["optimizer"] if first else ""
            first = False
            if c["status"] != "ok" or "step_ms" not in c:
                lines.append(f"{label:<11}{name:<38}  {c['status']}")
                continue
            compile_s = c["lower_s"] + c["compile_s"] if "compile_s" in c else None
            ratios = ""
            if name == "gradxform" and row["ratio"]:
                r = row["ratio"]
                ratios = (
                    f"   step {r['step']:.2f}, compile {r['compile']:.2f}, state {r['state']:.2f}"
                )
            lines.append(
                f"{label:<11}{name:<38}{c['step_ms']:>10.2f}{c['mean_ms']:>10.2f}"
                f"{_fmt(compile_s, '.2f'):>10}{c['state_bytes'] / 1e6:>10.2f}{ratios}"
            )
    lines += [
        "",
        (
            "ms/step = median of the alternating rounds, mean ms = their mean (it carries the "
            "steps that refresh a basis); compile s = trace + lower + compile of the jitted step "
            "(the torch reference runs eagerly: none, and no ratio across frameworks)."
        ),
    ]
    return lines


def write_json(result: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=False)
        f.write("\n")


def markdown(result: dict) -> str:
    """The same figures as ``table``, as a Markdown table (for docs and committed copies)."""
    meta, probe = result["meta"], result["probe"]["gbps"]
    lines = [
        (
            f"`{meta['command']}` on {meta['cpu']} ({meta['cpu_count']} cores, device "
            f"`{meta['device']}`), {meta['date']}, jax {meta['jax']}, optax {meta['optax']}, "
            f"gradxform {meta['gradxform']} ({meta['git_commit']}); load average "
            f"{meta['loadavg_start'][0]:.1f} at the start, "
            f"{meta['loadavg_end'][0]:.1f} at the end; "
            f"bandwidth probe {probe:.1f} GB/s."
        ),
        "",
        (
            "| workload | optimizer | contender | ms/step | ratio | ratio 95% CI | ratio q1-q3 "
            "| kernels | MB moved | Mflop | GB/s | % probe "
            "| compile s | state MB | state bytes over minimum | peak / footprint "
            "| fresh MB / step |"
        ),
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["results"]:
        for name, c in row["contenders"].items():
            label = f"{row['workload']} ({row['leaves']} leaves) | {row['optimizer']}"
            if c["status"] != "ok":
                lines.append(f"| {label} | {name} | {c['status']} |" + " |" * 15)
                continue
            ratio = row["ratio"].get(name)
            lines.append(
                f"| {label} | {name} | {c['step_ms']:.2f} | {_fmt(ratio, '.2f')} "
                f"| {_spread(row, name, 'ratio_ci95')} | {_spread(row, name)} "
                f"| {c.get('kernels', '-')} | {_millions(c.get('bytes_accessed'))} "
                f"| {_millions(c.get('flops'))} | {c['gbps']:.1f} | {100 * c['gbps'] / probe:.0f}% "
                f"| {c['lower_s'] + c['compile_s']:.1f} | {c['state_bytes'] / 1e6:.2f} "
                f"| {_excess(c, row)} "
                f"| {_fmt(c['peak_over_footprint'], '.2f')} "
                f"| {_fmt(_fresh_mb(c), '.1f')} |"
            )
    comp = result.get("compile")
    if comp:
        lines += [
            "",
            (
                f"Compile time (trace + lower + compile), {comp['optimizer']} "
                f"on {comp['workload']} "
                f"({comp['leaves']} leaves), median of {comp['repeats']} fresh processes "
                "(ratio: median of the repeats' ratios to optax):"
            ),
            "",
            "| contender | step s | ratio | init s | ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, c in comp["contenders"].items():
            if c.get("status", "ok") == "ok":
                lines.append(
                    f"| {name} | {c['median_s']:.1f} | {_fmt(comp['ratio'].get(name), '.2f')} "
                    f"| {_fmt(c.get('init_s'), '.2f')} "
                    f"| {_fmt(comp.get('init_ratio', {}).get(name), '.2f')} |"
                )
    section = result.get("preconditioners")
    if section:
        lines += ["", *preconditioners_markdown(section)]
    return "\n".join(lines) + "\n"


def preconditioners_markdown(section: dict) -> list[str]:
    """The preconditioners section as a Markdown table, settings listed under it."""
    lines = [
        (
            f"Preconditioners on {section['workload']} ({section['leaves']} leaves, float32), "
            "same settings on both sides:"
        ),
        "",
        (
            "| optimizer | contender | ms/step (median) | mean ms | compile s | state MB "
            "| step ratio | compile ratio | state ratio |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in section["rows"]:
        for name, c in row["contenders"].items():
            if c["status"] != "ok" or "step_ms" not in c:
                lines.append(f"| {row['optimizer']} | {name} | {c['status']} | | | | | | |")
                continue
            compile_s = c["lower_s"] + c["compile_s"] if "compile_s" in c else None
            r = row["ratio"] if name == "gradxform" else {}
            lines.append(
                f"| {row['optimizer']} | {name} | {c['step_ms']:.1f} | {c['mean_ms']:.1f} "
                f"| {_fmt(compile_s, '.1f')} | {c['state_bytes'] / 1e6:.2f} "
                f"| {_fmt(r.get('step'), '.2f')} | {_fmt(r.get('compile'), '.2f')} "
                f"| {_fmt(r.get('state'), '.2f')} |"
            )
    lines += ["", "Settings:", "", *(f"- {line.strip()}" for line in _settings_lines(section))]
    return lines


def summary_markdown(result: dict) -> str:
    """The README's condensed table: per case, optax's time and each contender's ratio,
    the floor step's ratio on the Adam rows, and the compile-time line."""
    meta, probe = result["meta"], result["probe"]["gbps"]
    lines = [
        (
            "| workload | optimizer | optax ms | optax again: ratio [95% CI] | gradxform ms "
            "| ratio [95% CI] | kernels / bytes / flops over optax's | grouped ms | ratio "
            "| packed ms | ratio | gradxform GB/s (of probe) | state bytes over minimum (optax) |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def ms(c):
        return "-" if c.get("status") != "ok" else f"{c['step_ms']:.1f}"

    def with_spread(row, name):
        ratio, spread = row["ratio"].get(name), _spread(row, name, "ratio_ci95")
        return _fmt(ratio, ".2f") + (f" [{spread}]" if spread else "")

    for row in result["results"]:
        cs, ratio = row["contenders"], row["ratio"]
        gx_, grp, opt = cs.get("gradxform", {}), cs.get("gradxform+grouped", {}), cs["optax"]
        pkd = cs.get("gradxform+packed", {})
        bw = (
            "-"
            if gx_.get("status") != "ok"
            else f"{gx_['gbps']:.1f} ({100 * gx_['gbps'] / probe:.0f}%)"
        )
        excess = "-" if gx_.get("status") != "ok" else f"{_excess(gx_, row)} ({_excess(opt, row)})"
        lines.append(
            f"| {row['workload']} | {row['optimizer']} | {ms(opt)} "
            f"| {with_spread(row, REPLICA)} | {ms(gx_)} "
            f"| {with_spread(row, 'gradxform')} | {_static(row, 'gradxform')} | {ms(grp)} "
            f"| {_fmt(ratio.get('gradxform+grouped'), '.2f')} | {ms(pkd)} "
            f"| {_fmt(ratio.get('gradxform+packed'), '.2f')} | {bw} | {excess} |"
        )
        if FLOOR in cs and cs[FLOOR].get("status") == "ok":
            lines.append(
                f"| {row['workload']} | *floor: `p - c g`, no optimizer* | | | {ms(cs[FLOOR])} "
                f"| {_fmt(ratio.get(FLOOR), '.2f')} | {_static(row, FLOOR)} | | | | | | |"
            )
    comp = result.get("compile")
    if comp:
        parts = [
            f"{name} {c['median_s']:.1f} s"
            + ("" if name == "optax" else f" ({_fmt(comp['ratio'].get(name), '.2f')})")
            for name, c in comp["contenders"].items()
            if c.get("status", "ok") == "ok"
        ]
        lines += [
            "",
            f"Compile time (trace + lower + compile, median of {comp['repeats']}; ratio: median "
            "of the repeats' ratios to optax) of "
            f"{comp['optimizer']} on {comp['workload']} ({comp['leaves']} leaves): "
            + ", ".join(parts)
            + ".",
        ]
    lines += [
        "",
        (
            f"`{meta['command']}`, {meta['date'][:10]}, {meta['cpu']} ({meta['cpu_count']} cores), "
            f"jax {meta['jax']}, optax {meta['optax']}, commit {meta['git_commit']}; load average "
            f"{meta['loadavg_start'][0]:.1f} -> {meta['loadavg_end'][0]:.1f}; "
            f"probe {probe:.1f} GB/s."
        ),
    ]
    return "\n".join(lines) + "\n"
