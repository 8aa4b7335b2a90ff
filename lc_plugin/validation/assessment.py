"""What an accuracy report says in words: the methods paragraph, the estimate it leads with, warnings.

A number without its design is not a result: the same model scores 0.85 on test pixels that
neighbour its training pixels and 0.74 on spatially separate ones. The report therefore states how
the evaluated pixels were chosen and split, how many there were and where the reference came from,
leads with the estimate that does not leak (held-out blocks or patches, else the spatial
cross-validation), and says why any other figure it shows is not that estimate.
"""

from __future__ import annotations

from .pages import number

SPLIT_WORDS = {
    "block": "whole {b} × {b}-pixel blocks held out (about {f:.0%} of the blocks, dealt so that every class is spread over both sides), "
    "so no test pixel neighbours a training pixel",
    "patch": "whole patches held out (about {f:.0%} of them)",
    "pixel": "individual pixels held out at random (about {f:.0%} of each class), so test pixels neighbour training pixels",
}


def _fmt(value: float | None) -> str:
    return number(value, 3)


def _ci(entry: dict) -> str:
    if entry["value"] is None:
        return "n/a"
    return f"{entry['value']:.3f} (95 % CI {entry['low']:.3f}–{entry['high']:.3f})"


def _describe_reference(r: dict) -> str:
    """'layer (class field F, how ids were made, eroded by N px)' for the methods paragraph."""
    bits = [r.get("source") or r["file"]]
    if r.get("class_field"):
        bits.append(f"class field {r['class_field']}")
    if r.get("class_ids"):
        bits.append(r["class_ids"])
    if r.get("erosion_px"):
        bits.append(f"eroded by {r['erosion_px']} px")
    return " (".join([bits[0], ", ".join(bits[1:])]) + ")" if len(bits) > 1 else bits[0]


def _training_sentences(params: dict, test_metrics: dict, cv: dict | None) -> list[str]:
    out = []
    refs = params.get("references") or []
    if refs:
        # One patch's reference is usually described like the next (same layer, field, erosion): say it once.
        described = list(dict.fromkeys(_describe_reference(r) for r in refs))
        more = f" and {len(described) - 3} more" if len(described) > 3 else ""
        out.append(f"Reference: {'; '.join(described[:3])}{more}, rasterized on the patch grid.")
    clouds = sorted(set(params.get("cloud_masking") or []))
    if clouds:
        out.append("Clouds: " + "; ".join(clouds) + ".")
    n_patches = params.get("n_patches")
    spc = params.get("samples_per_class")
    if spc:
        out.append(
            f"Sampling: a class-balanced (stratified by reference class) random sample of at most {spc:,} pixels per class "
            f"with valid data on every date, from {n_patches} patch{'es' if n_patches != 1 else ''}."
        )
    split = params.get("split", "pixel")
    words = SPLIT_WORDS.get(split, split).format(b=params.get("block_px", 20), f=params.get("test_fraction", 0.25))
    out.append(f"Split: {words}; {test_metrics.get('n_train', 0):,} training and {test_metrics.get('n_test', 0):,} test pixels.")
    if cv and "skipped" not in cv:
        out.append(
            f"Cross-validation: {cv['k']}-fold, whole spatial groups per fold ({cv.get('group', 'groups')}, {cv['n_groups']} groups), "
            "refitting the model on the other folds each time."
        )
    elif cv:
        out.append(f"Cross-validation: not run ({cv['skipped']})")
    if params.get("n_estimators"):
        out.append(
            f"Classifier: LightGBM, {params['n_estimators']} trees of at most {params.get('num_leaves')} leaves, learning rate "
            f"{params.get('learning_rate')}, seed {params.get('seed')}."
        )
    return out


def assess(kind: str, doc: dict, model: dict, overlap: dict | None, evaluated: str) -> dict:
    """The report's words: ``methods`` (sentences), ``lead`` (label, value, why), ``others`` and ``warnings``.

    ``kind`` is "held-out" (the training step's test predictions) or "map" (a map against a
    reference); ``model`` holds the model's ``params``, ``test_metrics`` and ``cv`` (may be empty);
    ``overlap`` is {"pixels": k, "of": n} evaluated pixels in the model's training blocks, or None when
    unknown; ``evaluated`` says which pixels were compared.
    """
    params, tm, cv = model.get("params") or {}, model.get("test_metrics") or {}, model.get("cv")
    intervals = doc["intervals"]
    methods = _training_sentences(params, tm, cv) if params else []
    methods.append(
        f"Assessment: {evaluated}; {doc['n']:,} pixels in the error matrix (rows reference, columns map). Overall, user's and "
        f"producer's accuracy with 95 % confidence intervals: {intervals['method']} (design: {intervals['design']})."
    )
    if intervals["design"] != "stratified by map class":
        methods.append(
            "Pixels are not independent (neighbours are alike), so these intervals are narrower than the true uncertainty; "
            "for area estimates with unbiased intervals use Sample design and Area estimation (Olofsson et al. 2014)."
        )
    warnings, others = [], []
    leaked: dict = overlap if overlap and overlap["pixels"] > 0 else {}
    leaks = bool(leaked)
    if params.get("unmasked_accepted"):
        warnings.append(
            f"{params['unmasked_accepted']} training stack(s) had never been cloud-masked and were accepted with ALLOW_UNMASKED: "
            "clouds may be among the training pixels."
        )
    if leaks:
        share = leaked["pixels"] / max(1, leaked["of"])
        warnings.append(
            f"{leaked['pixels']:,} of the {leaked['of']:,} evaluated pixels ({share:.0%}) lie in the {params.get('block_px', 20)}-pixel "
            "blocks the model was trained on: this is (partly) an in-sample figure and optimistic. Evaluate on blocks or patches "
            "the model never saw."
        )
    label = "Held-out overall accuracy" if kind == "held-out" else "Overall accuracy of this map"
    this = {"label": label, "value": intervals["overall_accuracy"]}
    done: dict = cv if cv and "skipped" not in cv else {}  # a cross-validation that ran
    has_cv = bool(done)
    if not leaks and overlap is not None:
        why = (
            "held-out pixels in blocks/patches the model never saw" if kind == "held-out" else "pixels outside the model's training blocks"
        )
        lead = {**this, "why": f"The honest estimate: {why}."}
        if has_cv:
            others.append(
                f"Spatial cross-validation: overall accuracy {_fmt(done['overall_accuracy_mean'])} ± {_fmt(done['overall_accuracy_std'])} "
                f"(mean ± std over {done['k']} folds), a second honest estimate over all sampled pixels."
            )
    elif has_cv:
        lead = {
            "label": f"Spatial cross-validation ({done['k']} folds by {done.get('group', 'group')})",
            "value": {"value": done["overall_accuracy_mean"], "std": done["overall_accuracy_std"]},
            "why": "The honest estimate: each fold is scored on spatial groups its model never saw.",
        }
        why = (
            "optimistic: its pixels overlap the training sample (see the warning)."
            if leaks
            else "shown for completeness; whether its pixels overlap the training sample is unknown."
        )
        others.append(f"This report's overall accuracy, {_ci(intervals['overall_accuracy'])}, is {why}")
    else:
        why = "optimistic (see the warning); no cross-validation is stored in the model to lead with instead." if leaks else (
            "whether these pixels overlap the model's training sample is unknown (give the model to check)."
        )
        lead = {**this, "why": f"The only estimate available: {why}"}
    return {"methods": methods, "lead": lead, "others": others, "warnings": warnings}
