"""The results file: the goals table, one section per figure, and for every missed goal its profile and fix."""

from __future__ import annotations

METHOD = """\
Every figure is a ratio of two things measured side by side in this one run (absolute times on these shared
2-core machines vary by 2x from minute to minute): the two trainers alternate ABBA, the compared training steps
alternate step by step, the matmul peak is measured between the utilisation run's steps, and contexts are taken
round-robin. Times are medians (or sums over steady steps); warm-up steps are left out and listed. All runs use
torch with 2 intra-op threads (OMP/MKL_NUM_THREADS=2 for the subprocesses), CPU, fp32 (figure 4b: also bf16
autocast). Every training step timed in-process is the trainer's own `lotlip.train.step.TrainStep`. Figure 8, if
present, was measured separately on a GPU machine (`python -m bench --gpu`; its own machine and date)."""


def _row(*cells: object) -> str:
    return "| " + " | ".join("" if c is None else str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return [_row(*header), _row(*["---"] * len(header)), *[_row(*r) for r in rows]]


def goals(results: dict) -> list[dict]:
    """One row per goal of the issue: figure, goal, measured value, met."""
    out = []

    def add(fig: str, what: str, goal: str, value: object, met: bool | None) -> None:
        out.append({"figure": fig, "what": what, "goal": goal, "value": value, "met": met})

    if t := results.get("train"):
        add("1", "lotlip / open_clip_train training samples/s, raw captions (lotlip trims padding)",
            f">= {t['goal_ratio']}x", f"{t['ratio']}x", t["ratio"] >= t["goal_ratio"])
        if fc := t.get("full_context"):
            add("1b", "lotlip / open_clip_train training samples/s, captions filling 77 tokens (equal length)",
                f">= {fc['goal_ratio']}x", f"{fc['ratio']}x", fc["ratio"] >= fc["goal_ratio"])
    if c := results.get("corners"):
        add("2", f"step-time overhead of 2 corner tokens (context {c['context']})", f"<= {c['goal_pct']} %",
            f"{c['overhead_pct']} %", c["overhead_pct"] <= c["goal_pct"])
    if u := results.get("utilisation"):
        add("4", "training-step FLOP/s over the fp32 matmul peak", f">= {u['goal_pct']} %",
            f"{u['utilisation_pct']} %", u["utilisation_pct"] >= u["goal_pct"])
        if (pr := u.get("precision")) and pr.get("bf16"):
            b, native = pr["bf16"], pr.get("bf16_kernels", True)
            add("4b", "bf16 training-step FLOP/s over the bf16 matmul peak", f">= {pr['goal_pct']} %",
                f"{b['utilisation_pct']} %" + ("" if native else " (no bf16 matmul kernels on this CPU: not a peak)"),
                b["utilisation_pct"] >= pr["goal_pct"] if native else None)
            add("4b", "bf16 / fp32 training-step speed-up (same run, ABBA)",
                f"report (bf16 / fp32 matmul peak: {pr['peak_speedup']}x)", f"{pr['step_speedup']}x", None)
        elif pr:
            add("4b", "bf16 training-step FLOP/s over the bf16 matmul peak", f">= {pr['goal_pct']} %",
                f"not measured: bf16 matmul {u['peak_bf16_gflops']} GFLOP/s on this CPU", None)
    if i := results.get("input"):
        for name, row in i["loader"].items():
            if "ratio" in row:
                add("5", f"loader / trainer samples/s ({name})", f">= {i['goal_ratio']}x", f"{row['ratio']}x",
                    row["ratio"] >= i["goal_ratio"])
    if e := results.get("eval"):
        large = e["similarity"][-1]
        add("6", f"blocked top-k at {large['n']:,} x {large['n']:,} fits in memory", "runs; dense would need "
            f"{large['dense_matrix_mb']:,} MB", f"peak +{large['peak_extra_mb']} MB, {large['seconds']} s", True)
    if p := results.get("pipeline"):
        add("7", "no-op re-plan (`snakemake -n`)", f"<= {p['goal_replan_s']} s", f"{p['replan_median_s']} s",
            p["replan_median_s"] is not None and p["replan_median_s"] <= p["goal_replan_s"])
    if g := results.get("gpu"):
        for name in g["settings"]["precisions"]:
            row = g["precisions"][name]
            add("8", f"paper shapes on {g['world_size']} GPU(s), {name}: samples/s (utilisation of the bf16 peak)",
                "report", f"{row['samples_per_s']} ({row['utilisation_bf16_peak_pct']} %)", None)
    return out


def to_markdown(results: dict) -> str:
    """The whole human-readable report."""
    lines = _header(results)
    for name, fn in (("train", _train), ("corners", _corners), ("context", _context), ("utilisation", _util),
                     ("input", _input), ("eval", _eval), ("pipeline", _pipeline), ("gpu", gpu_markdown)):
        if results.get(name):
            lines += ["", *fn(results[name])]
    lines += ["", *_missed(results)]
    return "\n".join(lines) + "\n"


def _header(r: dict) -> list[str]:
    m = r["machine"]
    v = m["versions"]
    lines = ["# lotlip benchmarks", "",
             f"Written by `{r['command']}` ({r['mode']} mode, {r['total_s']} s for the figures run now: "
             f"{', '.join(r['figures_run'])}).", "",
             f"- machine: {m['cpu']}, {m['cpu_count']} CPUs ({m['affinity']} usable), {m['mem_total_gb']} GB RAM; "
             f"{m['platform']}; torch threads {m['torch_threads']}",
             f"- versions: python {v['python']}, lotlip {v['lotlip']}, torch {v['torch']}, open_clip_torch "
             f"{v['open_clip_torch']}, webdataset {v['webdataset']}, snakemake {v['snakemake']}, numpy {v['numpy']}, "
             f"pillow {v['pillow']}",
             f"- commit {m['git_commit']}; date {m['date']}",
             f"- load average (1/5/15 min) at start {m['load_average_start']}, at end {m['load_average_end']}; "
             "each figure's own is in results.json (`_run`). The machine is shared with other workers.", ""]
    if r.get("data"):
        d = r["data"]
        fc = d.get("full_context")
        lines += [f"Data: {d['samples']} synthetic-world samples (32 px PNG) in {d['shards']} webdataset shards "
                  f"({d['fields']}), built in {d['build_s']} s"
                  + (f"; for figure 1b the same samples again in {fc['shards']} shards whose raw caption is "
                     f"{fc['raw']} ({fc['build_s']} s)" if fc else "") + ".", ""]
    lines += ["## Goals", "", *_table(["figure", "what", "goal", "measured", "met"],
                                      [[g["figure"], g["what"], g["goal"], g["value"],
                                        {True: "yes", False: "**no**", None: "-"}[g["met"]]]
                                       for g in r.get("goals", [])]), "", "## Method", "", METHOD]
    return lines


def _train_rows(t: dict) -> list[list[object]]:
    return [[name, ", ".join(str(run["samples_per_s"]) for run in runs),
             t["lotlip_samples_per_s"] if name == "lotlip" else t["open_clip_samples_per_s"],
             ", ".join(str(run["steady_step_s"]) for run in runs),
             ", ".join(str(run["process_wall_s"]) for run in runs)] for name, runs in t["runs"].items()]


TRAIN_HEADER = ["trainer", "samples/s per run", "samples/s (pooled)", "steady step s", "process wall s"]


def _train(t: dict) -> list[str]:
    rows = _train_rows(t)
    if w := t.get("open_clip_workers1"):
        rows.append(["open_clip_train --workers 1 (a loader process)", w["samples_per_s"], w["samples_per_s"],
                     w["steady_step_s"], w["process_wall_s"]])
    mt = t.get("lotlip_multitext")
    if mt:
        rows.append([f"lotlip multi-text (raw + 3 long, {mt['corner_tokens']} corners)", mt["samples_per_s"],
                     mt["samples_per_s"], mt["steady_step_s"], mt["process_wall_s"]])
    tok, fc = t["caption_tokens"], t.get("full_context")
    lines = ["## 1. Training throughput: lotlip vs open_clip_train", "",
             f"Model {t['model']}; parameters lotlip {t['params']['lotlip']:,}, open_clip "
             f"{t['params']['open_clip']:,}. "
             f"Batch {t['batch']}, {t['threads']} threads, {t['steps']} steps per run of which the first {t['skip']} "
             f"are left out.", ""]
    if fc:
        lines += ["Two comparisons: **1 (raw captions)** measures the trainers as they are used, lotlip's padding "
                  "trim included; **1b (captions filling the 77-token context)** gives both text towers the same "
                  "77 tokens per caption, so its ratio is the trainers' own (loader, step, logging).", ""]
    lines += [f"### 1. Raw captions (lotlip trims padding); run order {', '.join(t['order'])}", "",
              *_table(TRAIN_HEADER, rows), "",
              f"**lotlip / open_clip_train = {t['ratio']}x on the raw captions** (goal >= {t['goal_ratio']}x)"
              + (f"; against open_clip_train with one loader worker process {w['ratio_lotlip_over_it']}x" if w else "")
              + ".", "",
              f"Where the difference comes from: both run the same model, loss and optimiser; lotlip trims each batch "
              f"to its longest caption (raw captions: median {tok['median']}, max {tok['max']} tokens with "
              f"[SOT]/[EOT]) while open_clip_train pads every caption to {tok['open_clip_context']}, so its text tower "
              f"sees ~{round(tok['open_clip_context'] / tok['max'], 1)}x (or more) as many text tokens. "
              "open_clip_train also decodes the json member and applies RandomResizedCrop (lotlip: resize + centre "
              "crop). Process wall time includes imports, model build and the final checkpoint."
              + (f" The multi-text step (4 texts per image, corners) costs {mt['cost_vs_short']}x the short step per "
                 "sample; it is LoTLIP's real training step." if mt else "")]
    if t.get("profile"):
        lines += ["", "Profile of lotlip's trainer (cProfile, top by self time):", "", *_pstats(t["profile"])]
    if fc:
        ft = fc["caption_tokens"]
        lines += ["", f"### 1b. Captions filling the 77-token context (equal text length); run order "
                  f"{', '.join(fc['order'])}", "",
                  "Same images, model and settings; each raw caption (json `raw` for lotlip, `txt` for "
                  "open_clip_train) is the image's long captions joined to at least 77 tokens "
                  f"(median {ft['median']}, min {ft['min']} tokens with [SOT]/[EOT]; {ft['at_least_77_pct']} % "
                  "reach 77), so both trainers truncate to 77 and lotlip's trim leaves 77.", "",
                  *_table(TRAIN_HEADER, _train_rows(fc)), "",
                  f"**lotlip / open_clip_train = {fc['ratio']}x at equal text length** (goal >= {fc['goal_ratio']}x; "
                  f"the raw-caption ratio above, {t['ratio']}x, adds the padding trim)."]
        if fc.get("profile"):
            lines += ["", "Profile of lotlip's trainer on these captions (cProfile, top by self time):", "",
                      *_pstats(fc["profile"])]
    return lines


def _corners(c: dict) -> list[str]:
    q1, q3 = c["overhead_pct_quartiles"]
    lines = ["## 2. Corner-token overhead", "",
             f"{c['model']}, batch {c['batch']}, {c['texts_per_image']} texts/image, context {c['context']} fully used "
             f"(random ids, no padding), {c['warmup_steps']} warm-up + {c['timed_rounds']} interleaved timed steps "
             "(ABBA), full training step (forward, multi-text loss, backward, AdamW).", "",
             *_table(["corners", "median step s", "fastest step s", "samples/s", "step GFLOP"],
                     [[k, c[f"corners_{k}"]["median_s"], c[f"corners_{k}"]["min_s"], c[f"corners_{k}"]["samples_per_s"],
                       c[f"corners_{k}"]["step_gflops"]] for k in (0, 2)]), "",
             f"Overhead of 2 corners: **{c['overhead_pct']} %** (median of paired step ratios; quartiles {q1} .. {q3} "
             "%; "
             f"goal <= {c['goal_pct']} %). Fastest-step ratio {c['overhead_pct_min_times']} %; counted FLOPs "
             f"{c['flop_overhead_pct']} %; the only K-dependent work (mask, head on 1+K tokens, loss over 1+N(1+K) "
             f"features; forward + backward, timed alone) is {c['corner_work_overhead_pct']} % of the fastest K=0 "
             "step. "
             "The transformer sees the same L tokens for any K, so the true overhead is the FLOP / K-work figure; the "
             "step ratios show the machine's noise around it."]
    if c.get("profile"):
        lines += ["", "Profiles (torch.profiler, one step each, top ops by self CPU time):", ""]
        for key, prof in c["profile"].items():
            lines += [f"{key}:", "", *_ops(prof), ""]
    return lines


def _context(c: dict) -> list[str]:
    steps = {r["context"]: r for r in c["steps"]["rows"]}
    enc = {r["context"]: r for r in c["text_encoder"]["rows"]}
    s = c["steps"]
    rows = [[n, steps[n]["step_median_s"], steps[n]["step_vs_first"], steps[n].get("step_min_s"),
             steps[n].get("step_min_vs_first"), steps[n]["samples_per_s"], steps[n]["step_gflops"],
             enc[n]["gflops_per_text"], enc[n]["texts_per_s"]] for n in steps]
    lines = ["## 3. Context-length cost", "",
             f"{s['model']} with {s['corner_tokens']} corners; training step at batch {s['batch']}, "
             f"{s['texts_per_image']} texts/image, contexts fully used, {s['rounds']} rounds round-robin; text encoder "
             f"FLOPs per text (torch FlopCounterMode, CPU flash-attention formula registered) and inference "
             f"`encode_text` at batch {c['text_encoder']['rows'][0]['encode_batch']} (fastest of "
             "its repeats).", "",
             *_table(["context", "train step s (median)", "vs first", "fastest step s", "vs first",
                      "train samples/s (median)", "step GFLOP", "text encoder GFLOP/text", "encode_text texts/s"],
                     rows), "",
             "Machine load only ever slows a step down, so on a busy machine the fastest step is the better "
             "estimate of the context's own cost; the FLOP columns are exact."]
    if c.get("bert_base"):
        lines += ["", f"Paper's text tower ({c['bert_base']['model']}), GFLOP per text: "
                  + ", ".join(f"{r['context']}: {r['gflops_per_text']}" for r in c["bert_base"]["rows"]) + "."]
    return lines


def _util(u: dict) -> list[str]:
    lines = ["## 4. Hardware utilisation", "",
             f"Training step (`TrainStep`, fp32) of {u['model']} ({u['corner_tokens']} corners, batch {u['batch']}, "
             f"{u['texts_per_image']} texts/image, context {u['context']}): {u['step_gflop']} GFLOP counted, median "
             f"{u['step_median_s']} s over {u['rounds']} steps -> **{u['achieved_gflops']} GFLOP/s**. fp32 matmul "
             f"peak ({u['peak_matmul_n']}^3, measured between those steps): **{u['peak_gflops']} GFLOP/s** (bf16: "
             f"{u['peak_bf16_gflops']}). **Utilisation {u['utilisation_pct']} %** (goal >= {u['goal_pct']} %); best "
             f"case (fastest step over fastest peak) {u.get('best_case_utilisation_pct')} %.", "",
             "GEMM rate at the model's own shapes (fp32, forward; each measured right after a square-matmul peak, "
             "median of the paired ratios):", "",
             *_table(["GEMM", "m x k x n", "GFLOP/s", "of the peak beside it"],
                     [[g["gemm"], f"{g['m']} x {g['k']} x {g['n']}", g["gflops"], f"{g['of_peak_pct']} %"]
                      for g in u["model_gemms"]])]
    if a := u.get("adamw_step"):
        lines += ["", f"AdamW `optimizer.step()` for this model: {a['default_ms']} ms as open_clip_train builds it "
                  f"(CPU default: one tensor at a time), {a['foreach_ms']} ms with `foreach=True`, {a['fused_ms']} ms "
                  "with `fused=True` (lotlip's trainer and the step above)."]
    p = u["profile"]
    split = ", ".join(f"{k} {v} %" for k, v in p["split_pct"].items())
    lines += ["", f"Profile of the fp32 step (torch.profiler, {p['steps']} steps). Self CPU time by op category: "
              f"{split}; AdamW's step {p['optimizer_step_share_pct']} % (inclusive). Top ops by self CPU time:", "",
              *_ops(p)]
    if pr := u.get("precision"):
        lines += ["", *_bf16(u, pr)]
    return lines


def amdahl_speedup(matrix_share_pct: float, gemm_speedup: float) -> float:
    """Step speed-up if only the matrix-product share of the step ran ``gemm_speedup`` times faster."""
    share = matrix_share_pct / 100
    return round(1 / ((1 - share) + share / gemm_speedup), 2)


def _bf16(u: dict, pr: dict) -> list[str]:
    if not pr.get("bf16"):
        return ["### 4b. bf16 vs fp32 (same run, interleaved ABBA)", "",
                f"bf16 step {pr['bf16_skipped']}. bf16 / fp32 square-matmul rate: {pr['peak_speedup']}x; CPU flags: "
                f"{', '.join(pr.get('cpu_flags', [])) or '?'}. Rerun on a CPU with AVX512_BF16 or AMX (or see the "
                "GPU check, figure 8)."]
    rows = [[name, pr[name]["step_median_s"], pr[name]["step_min_s"], pr[name]["samples_per_s"],
             pr[name]["achieved_gflops"], f"{name} {pr[name]['peak_gflops']}", f"{pr[name]['utilisation_pct']} %"]
            for name in ("fp32", "bf16")]
    bound = amdahl_speedup(u["profile"]["matmul_share_pct"], pr["peak_speedup"])
    red = pr.get("reduced")
    size = (f"at batch {red['batch']} (not {u['batch']}: {red['why']}), {red['peak_matmul_n']}^3 square matmuls, "
            f"{red['rounds']} rounds" if red else
            f"at batch {u['batch']}, {u['peak_matmul_n']}^3 square matmuls, {u['rounds']} rounds")
    gflop = red["step_gflop"] if red else u["step_gflop"]
    lines = ["### 4b. bf16 vs fp32 (same run, interleaved ABBA)", "",
             f"The same model and batch, stepped by `TrainStep(precision=\"fp32\")` and `TrainStep(precision="
             f"\"bf16\")` (CPU bf16 autocast, fp32 master weights), each beside a square matmul of its own dtype, "
             f"{size}; order fp32 then bf16, reversed every other round. "
             f"Achieved GFLOP/s = the step's {gflop} GFLOP (counted once, fp32) / its median time; each "
             "precision's utilisation is against the peak of its own dtype.", "",
             *_table(["precision", "median step s", "fastest step s", "samples/s", "achieved GFLOP/s",
                      "matmul peak GFLOP/s", "utilisation of own peak"], rows), "",
             f"**bf16 / fp32 speed-up {pr['step_speedup']}x** (ratio of medians; median of the per-round paired "
             f"ratios {pr['step_speedup_paired']}x), while the square matmul speeds up {pr['peak_speedup']}x. If only "
             f"the fp32 step's matrix products and attention kernels ({u['profile']['matmul_share_pct']} % of its op "
             f"time) sped up by that much, the step would gain {bound}x (Amdahl)."
             + ("" if pr.get("bf16_kernels", True) else
                f" **This CPU has no bf16 matmul kernels** (flags: {', '.join(pr.get('cpu_flags', [])) or '?'}; "
                "oneDNN's bf16 path needs AVX-512, native bf16 needs AVX512_BF16 or AMX): torch falls back to a "
                "scalar loop, so the bf16 'peak' is no peak and the bf16 numbers only show that the path runs.")]
    if bp := u.get("bf16_profile"):
        split = ", ".join(f"{k} {v} %" for k, v in bp["split_pct"].items())
        lines += ["", f"Profile of the bf16 step (torch.profiler, {bp['steps']} steps). Self CPU time by op "
                  f"category: {split}. Top ops by self CPU time:", "", *_ops(bp)]
    return lines


def _ops(p: dict) -> list[str]:
    return _table(["op", "self CPU ms/step", "share", "calls/step"],
                  [[f"`{o['op']}`", o["self_cpu_ms_per_step"], f"{o['share_pct']} %", o["calls_per_step"]]
                   for o in p["top_ops"]])


def _pstats(rows: list[dict]) -> list[str]:
    return _table(["function", "calls", "self s", "cumulative s"],
                  [[f"`{r['function']}`", r["calls"], r["self_s"], r["cumulative_s"]] for r in rows])


def _input(i: dict) -> list[str]:
    rows = [[name, f"N={r['n_subcaptions']}, K={r['corner_tokens']}", r["samples_per_s"], r["first_batch_s"],
             r.get("trainer_samples_per_s", "-"), f"{r['ratio']}x" if "ratio" in r else "-",
             f"{r['loading_share_of_step_pct']} %" if "ratio" in r else "-"] for name, r in i["loader"].items()]
    st = i["stages"]
    lines = ["## 5. Input pipeline vs the trainer", "",
             f"`lotlip.data.loader.train_batches` as the trainer calls it (tar read, 2,000-sample shuffle buffer, "
             f"json + PNG decode, {i['transform']}, sub-caption sampling, tokenisation, padding trim), batch "
             f"{i['batch']}, {i['timed_batches']} timed batches after the first. Trainer: figure 1's lotlip runs "
             "(same process layout: the loader runs in the trainer's process, so its time is part of every step).", "",
             *_table(["batches", "texts", "loader samples/s", "first batch s", "trainer samples/s",
                      "loader / trainer", "loading share of a step"], rows), "",
             f"Stages alone: tar read + shuffle {st['tar_read_shuffle']} samples/s; json + PNG decode "
             f"{st['parse_decode_png']} samples/s; the rest (transform, sampling, tokenisation, collation) is the "
             "difference to the full loader."]
    if i.get("profile"):
        lines += ["", f"Profile of the loader ({i['profile']['config']}; cProfile, top by self time):", "",
                  *_pstats(i["profile"]["top"])]
    return lines


def _eval(e: dict) -> list[str]:
    enc = e["encode"]
    lines = ["## 6. Evaluation: long-text retrieval", "",
             f"{e['model']}; `encode_texts` / `encode_images` as `lotlip evaluate` runs them (batch {e['batch']}), "
             f"{e['text_style'].upper()}-style long texts (median {e['text_tokens']['median']}, max "
             f"{e['text_tokens']['max']} BPE tokens; context 77 truncates them).", "",
             *_table(["context", "texts", "texts/s", "images", "images/s"],
                     [[r["context"], r["texts"], r["texts_per_s"], r.get("images", "-"), r.get("images_per_s", "-")]
                      for r in enc]), "",
             f"Similarity search (`recall_at_k`, R@1 both directions, random unit features of dimension "
             f"{e['feature_dim']}): peak memory above the resident size before the call.", "",
             *_table(["N x N", "mode", "rows per block", "block MB", "dense matrix MB", "seconds", "peak extra MB"],
                     [[f"{r['n']:,}", r["mode"], r["block_rows"], r["similarity_block_mb"], f"{r['dense_matrix_mb']:,}",
                       r["seconds"], r["peak_extra_mb"]] for r in e["similarity"]]), "",
             "Blocked top-k keeps one `[rows, N]` block (256 MiB cap) and its top-k indices; the dense N x N matrix "
             "is never built, so 100k x 100k needs a few hundred MB instead of 40 GB. The time is memory-bound: each "
             "block is written once and scanned by top-k."]
    return lines


def _pipeline(p: dict) -> list[str]:
    rows = [[s["stage"], s["jobs"], s["wall_s_total"], s["wall_s_max"], s["cpu_s_total"], s["peak_rss_mb"]]
            for s in p["stages"]]
    lines = ["## 7. Pipeline (Snakemake)", "",
             f"Build: {p['label']}, target `{p['target']}`, `--cores {p['cores']}`, fresh temporary working directory"
             + (f", `--config {' '.join(p['extra_config'])}`" if p["extra_config"] else "") + ".", "",
             f"- wall time of the build: **{p['build_wall_s']} s** ({p['jobs']} jobs, {p['failed_jobs']} failed); "
             f"Snakemake's own peak RSS {p['snakemake_peak_rss_mb']} MB",
             f"- no-op re-plan (`snakemake -n {p['target']}` on the built tree, {len(p['replan_s'])} runs): "
             f"**{p['replan_median_s']} s** median ({p['replan_s']}; goal <= {p['goal_replan_s']} s), "
             f"'Nothing to be done': {p['replan_nothing_to_do']}, peak RSS {p['replan_peak_rss_mb']} MB"
             + (f"; it planned jobs because: {'; '.join(p['replan_reasons'])}" if p.get("replan_reasons") else ""),
             "",
             "Per stage (each job's peak RSS is exact: `getrusage(RUSAGE_CHILDREN).ru_maxrss` of the job's process, "
             "recorded by a `lotlip` shim first on PATH; the workflow itself is unchanged):", "",
             *_table(["stage", "jobs", "wall s (sum)", "wall s (max)", "CPU s (sum)", "peak RSS MB (max)"], rows)]
    if prof := p.get("replan_profile"):
        lines += ["", "Profile of one re-plan: its top-level imports (`python -X importtime`, cumulative):", "",
                  *_table(["module", "import s"], [[f"`{i['module']}`", i["cumulative_s"]] for i in prof["imports"]]),
                  "", "and cProfile of the same command (top by self time):", "", *_pstats(prof["cprofile"])]
    return lines


GPU_PARTS = ("data_to_device", "forward", "backward", "all_reduce", "optimizer")


def gpu_markdown(g: dict) -> list[str]:
    """Figure 8 (``python -m bench --gpu``): the section of results.md, also written alone as gpu_results.md."""
    m, gpu = g["machine"], g["machine"]["gpu"]
    where = (f"{gpu['count']} x {gpu['names'][0]} ({gpu['memory_gb'][0]} GB, compute capability "
             f"{gpu['capability'][0]}), CUDA {gpu['torch_cuda']}" if gpu.get("cuda") else f"CPU ({m['cpu']})")
    peaks = ", ".join(f"{k} {v}" for k, v in g["peak_tflops"].items())
    names = [n for n in g["settings"]["precisions"] if n in g["precisions"]]
    parts = [k for k in GPU_PARTS if k in g["precisions"][names[0]]["breakdown_ms"]]
    rows = []
    for name in names:
        r = g["precisions"][name]
        memory = (f"{r['peak_memory_gb']} GB" if "peak_memory_gb" in r else f"RSS {r.get('peak_rss_mb')} MB")
        rows.append([name, r["timed_steps"], r["step_median_s"], r["samples_per_s"], r["samples_per_s_per_gpu"],
                     *[r["breakdown_ms"][k] for k in parts], memory, r["achieved_tflops"],
                     f"{r['utilisation_bf16_peak_pct']} %", r["amp_skipped_steps"]])
    lines = [f"## 8. GPU check: the paper's training shapes ({g['model']})", "",
             f"`{g['command']}` ({g['mode']}), {g['total_s']} s; {where}; torch {m['versions']['torch']}, commit "
             f"{m['git_commit']}, {m['date']}. Measured separately from figures 1-7.", "",
             f"{g['model']} ({g['params']:,} parameters, random init offline; WordPiece vocabulary "
             f"{g['vocab_size']:,}: {g['vocab_source']}), images {g['image_size'][0]} px, batch {g['batch_per_gpu']} "
             f"per GPU x {g['world_size']} rank(s) = {g['global_batch']}, {g['texts_per_image']} texts per image "
             f"(1 raw + {g['texts_per_image'] - 1} long) at context {g['context']}; synthetic batches copied from "
             f"the CPU in every step. The trainer's `TrainStep` (multi-text loss, fused AdamW"
             + (", DDP: global-batch loss, one gradient all-reduce" if g["world_size"] > 1 else "") + "), "
             f"{g['settings']['warmup']} warm-up steps, then timed steps (wall time, synchronised). Counted "
             f"{g['step_tflop']} TFLOP per step per GPU; square matmul n = {g['peak_matmul_n']}: {peaks} TFLOP/s.", "",
             *_table(["precision", "steps", "step s (median)", "samples/s", "samples/s per GPU",
                      *[f"{k.replace('_', ' ')} ms" for k in parts], "peak memory", "TFLOP/s",
                      "of bf16 peak", "amp skipped steps"], rows), "",
             "Breakdown: medians of CUDA-event intervals (CPU: wall clock): copy of the batch to the device; forward "
             "(both towers and the loss, with its feature all-gather under DDP); backward; gradient all-reduce; "
             "optimizer (GradScaler unscale/update, AdamW, logit-scale clamp)."
             + (f" **bf16 / amp step speed-up {g['bf16_over_amp_speedup']}x.**" if g.get("bf16_over_amp_speedup")
                else ""), "",
             "Evaluation (`encode_image`, `encode_text` [CLS] feature, no gradient, under each precision's autocast, "
             f"batch {g['eval'][0]['batch']}): "
             + "; ".join(f"{e['precision']}: {e['images_per_s']} images/s, {e['texts_per_s']} texts/s"
                         for e in g["eval"]) + "."]
    if g["world_size"] > 1:
        lines += ["", "Per rank, median step s: " + "; ".join(
            f"{n}: {g['precisions'][n]['per_rank_step_median_s']}" for n in names) + "."]
    return lines


def _missed(r: dict) -> list[str]:
    missed = [g for g in r.get("goals", []) if g["met"] is False]
    lines = ["## Missed goals: where the time goes and what would fix it", ""]
    if not missed:
        return lines + ["None of the goals measured in this run was missed."]
    for g in missed:
        lines += [f"### Figure {g['figure']}: {g['what']} = {g['value']} (goal {g['goal']})", "",
                  FIXES.get(g["figure"], lambda _r: "See the figure's profile above.")(r), ""]
    return lines


def _fix_train(r: dict) -> str:
    return ("Profile: figure 1's cProfile table. lotlip's step is the model's forward/backward plus the in-process "
            "loader; a worker process for decoding (as open_clip_train's `--workers`) would overlap loading with "
            "compute.")


def _fix_corners(r: dict) -> str:
    c = r["corners"]
    return (f"The counted FLOPs differ by {c['flop_overhead_pct']} % and the K-dependent work timed alone is "
            f"{c['corner_work_overhead_pct']} % of a step, so a step ratio above the goal is machine noise on a shared "
            f"CPU (quartiles of the paired ratios {c['overhead_pct_quartiles']} %), not corner-token cost: the "
            "profiles above show the same ops with the same call counts (K=2 adds only the 1+K-token head and a "
            "larger loss). Fix: more interleaved rounds on a quiet machine; nothing in the model.")


def _fix_util(r: dict) -> str:
    u = r["utilisation"]
    p = u["profile"]
    slowest = min(g["of_peak_pct"] for g in u["model_gemms"])
    pr, adamw = u.get("precision"), u.get("adamw_step")
    rest = ", ".join(f"{k} {v} %" for k, v in p["split_pct"].items() if k not in ("matrix products",
                                                                                     "attention kernels"))
    gemms = (f"The GEMMs run at {slowest} % or more of the square-matmul peak at the model's own shapes, so the "
             "loss is outside them" if slowest >= 60 else
             f"The GEMMs themselves are thin (k = width = 128): the slowest of the model's shapes reaches only "
             f"{slowest} % of the square-matmul peak")
    bf16_fix = (f"bf16 autocast (`train.precision: bf16`; matmul peak {u['peak_bf16_gflops']} GFLOP/s here"
                + (f"; figure 4b's bf16 step ran at {pr['step_speedup']}x the fp32 step's speed)"
                   if pr and pr.get("bf16") else ")"))
    if pr and not pr.get("bf16_kernels", True):
        bf16_fix = (f"bf16 autocast on a CPU with bf16 matmul kernels (AVX512_BF16 or AMX; this one has none: bf16 "
                    f"matmul {u['peak_bf16_gflops']} GFLOP/s) or on a GPU")
    fixes = [bf16_fix,
             "torch.compile of the step, to fuse the elementwise chains (GELU, LayerNorm, residual adds, the "
             "QKV copies)",
             "calling `scaled_dot_product_attention` directly with a broadcast [B, 1, L, L] mask instead of "
             "`nn.MultiheadAttention`'s packed in-projection and [B*H, L, L] mask (lotlip/model/text_tower.py)",
             "a wider model (width >= 512), whose step is dominated by compute-bound GEMMs"]
    applied = (f" AdamW is fused, in the trainer and in this step ({adamw['default_ms']} -> {adamw['fused_ms']} "
               "ms per optimizer step).") if adamw else ""
    return (f"Profile: figure 4's tables.{applied} {p['matmul_share_pct']} % of op time is matrix products and "
            "attention "
            f"kernels, the work the FLOP count measures; the rest ({rest}) is memory-bound work with no counted "
            "FLOPs: the packed-QKV layout copies and gradient zero-fills of `nn.MultiheadAttention`, GELU and its "
            f"backward, LayerNorm, softmax, residual adds, the optimizer. {gemms}. What would fix it: "
            + "; ".join(fixes) + ". The tiny model (width 128) is sized for CPU minutes, so a large share of its "
            "step is memory-bound by design.")


def _fix_input(r: dict) -> str:
    i = r["input"]
    st = i["stages"]
    return (f"Profile: figure 5's cProfile table. Tar iteration with its shuffle buffer runs at "
            f"{st['tar_read_shuffle']} samples/s and json + PNG decode at {st['parse_decode_png']}; the rest of a "
            "sample's time is the per-sample torchvision transform (PIL -> tensor, normalise) and BPE tokenisation "
            "(ftfy clean-up included), all single-threaded Python in the trainer's process, between steps. Shards "
            "are written with `mtime=0` (one tar header per member; a float mtime added a PAX header to each). "
            "What would fix the rest: (1) in `lotlip/data/loader.py`, when the images already have the model's "
            "size, stack the uint8 arrays and convert + normalise once per batch instead of per sample (same "
            "arithmetic, so the same values); (2) `train.workers: k` decodes in k DataLoader processes, which "
            "overlaps loading with the step (the choice on GPU nodes) but competes with the two compute threads "
            "on a 2-core machine.")


def _fix_replan(r: dict) -> str:
    p = r["pipeline"]
    imports = (p.get("replan_profile") or {}).get("imports") or []
    heavy = ", ".join(f"`{i['module']}` {i['cumulative_s']} s" for i in imports[:3])
    text = (f"Profile: figure 7's tables. Every `snakemake` call first imports the Snakefile's Python; the heaviest "
            f"top-level imports of a re-plan were {heavy or 'not recorded'}; the re-plan's peak RSS is "
            f"{p['replan_peak_rss_mb']} MB. ")
    if any(i["module"].startswith(("lotlip.model", "torch", "open_clip", "transformers")) for i in imports[:3]):
        return text + ("torch is loaded just to plan: `lotlip.plan.sweep_points` imports `lotlip.model.factory` "
                       "(torch, open_clip, transformers) only to read a model's JSON config and the "
                       "`LONGCLIP_CONTEXT` constant. Fix (lotlip/plan.py): read the JSON through "
                       "`importlib.resources` and keep the constant in a torch-free module, so a re-plan costs "
                       "Snakemake's own start-up and DAG.")
    return text + ("Fixes: keep heavy imports out of the Snakefile's import path, cache the resolved config, "
                   "fewer/larger rules.")


def _fix_full_context(r: dict) -> str:
    fc = r["train"]["full_context"]
    return (f"At equal text length lotlip's trainer reached {fc['lotlip_samples_per_s']} samples/s and "
            f"open_clip_train {fc['open_clip_samples_per_s']}: without the padding trim the step is the same model, "
            "so the difference is the loop around it. Profile: figure 1b's cProfile table. lotlip decodes, "
            "transforms and tokenises in the trainer's process between steps (open_clip_train the same with "
            "`--workers 0`); `train.workers: 1` moves that into a loader process that overlaps the step.")


def _fix_bf16(r: dict) -> str:
    u = r["utilisation"]
    pr, p = u["precision"], u.get("bf16_profile") or u["profile"]
    rest = ", ".join(f"{k} {v} %" for k, v in p["split_pct"].items() if k not in ("matrix products",
                                                                                     "attention kernels"))
    return (f"Profile: figure 4b's bf16 table. bf16 speeds up the matrix products ({pr['peak_speedup']}x for the "
            f"square matmul) but not the memory-bound rest of the step ({rest} of the bf16 step's op time), and "
            "autocast adds a cast (copy) of every weight and activation that enters a matmul, so the bf16 step "
            f"reaches {pr['bf16']['utilisation_pct']} % of its higher peak. What would fix it: the same as figure "
            "4's (torch.compile to fuse the elementwise chains and the casts, a wider model whose step is "
            "GEMM-bound), plus keeping a bf16 copy of the weights across the forward and backward passes instead of "
            "casting them per op.")


FIXES = {"1": _fix_train, "1b": _fix_full_context, "2": _fix_corners, "4": _fix_util, "4b": _fix_bf16,
         "5": _fix_input, "7": _fix_replan}
