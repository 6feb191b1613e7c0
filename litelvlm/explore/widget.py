"""The notebook explorer: ipywidgets over :class:`~litelvlm.explore.data.ExploreData`.

A budget slider (N down to 1) and a method selector redraw the kept tokens from the cached selections; an
expression selector switches the similarity map, the referent outline and the text tokens; choosing a token
shows its attention row in the text encoder's last layer; "predict mask" runs the family's ``ground`` once per
method and budget (then cached). Redrawing reads caches and draws with numpy (:mod:`litelvlm.explore.draw`).
"""

from __future__ import annotations

import html

import numpy as np

from ..machine.optional import optional_import
from . import draw
from .data import ExploreData

#: a line on every view: this project's tool, not the paper's
TOOL_LABEL = ("litelvlm explore: this project's own explorer (not part of LiteLVLM's official code or "
              "project page)")


def attention_html(tokens: list[str], row: np.ndarray, chosen: int) -> str:
    """The text tokens, each shaded by the attention token ``chosen`` pays it in the last layer (its causal
    row)."""
    top = float(row.max()) if row.size else 1.0
    spans = []
    for j, tok in enumerate(tokens):
        a = float(row[j]) if j < row.size else 0.0
        alpha = 0.0 if j > chosen or top == 0 else a / top
        style = f"background: rgba(230,97,1,{alpha:.2f}); padding: 1px 3px; margin: 1px; border-radius: 3px"
        if j == chosen:
            style += "; outline: 2px solid #2c7bb6"
        spans.append(f'<span style="{style}" title="{a:.3f}">{html.escape(tok)}</span>')
    sink = f"{float(row[0]):.3f}" if row.size else "-"
    return (f"<div>attention row of <b>{html.escape(tokens[chosen])}</b> in the text encoder's last layer "
            f"(mean over heads); to [SOS]: {sink}</div><div style='line-height: 1.9'>{''.join(spans)}</div>")


def caption(data: ExploreData, method: str, budget: int) -> str:
    """What the kept-tokens view shows: the method, K of N, what each part supplied, tokens that are no
    patch."""
    kept = data.kept(method, budget)
    counts = {p: kept.parts.count(p) for p in kept.part_names()}
    parts = ", ".join(f"{draw.PART_LABELS.get(p, p).split(' (')[0]} {c}" for p, c in counts.items())
    extra = sum(i < 0 for i in kept.indices)
    note = f"; {extra} kept token(s) stand for no single visual token ([CLS] or merged)" if extra else ""
    whole = " (keeps every token whatever K)" if data.spec(method).baseline else ""
    return (f"{method}{whole}: K = {budget} of N = {data.n} visual tokens on the "
            f"{data.grid[0]} x {data.grid[1]} grid of {data.model}" + (f"; {parts}" if parts else "") + note)


class Explorer:
    """The widget; display it (``display(explorer)``, or as a cell's last value). ``precompute``: compute
    every budget of a method that acts on CLIP's tokens when it is first shown, so that the slider redraws
    from the cache."""

    def __init__(self, data: ExploreData, precompute: bool = True) -> None:
        w = optional_import("ipywidgets")

        self.data, self.precompute, self.redraws, self._no_mask = data, precompute, 0, None
        first = data.methods[0]
        self.method = w.Dropdown(options=data.methods, value=first, description="method")
        self.budget = w.IntSlider(min=1, max=data.top_budget(first), value=data.n, description="budget K",
                                  continuous_update=True)
        self.text = w.Dropdown(options=[(t, i) for i, t in enumerate(data.texts)], value=0,
                               description="text")
        self.token = w.ToggleButtons(options=self._token_options(0), value=len(data.tokens[0]) - 1,
                                     description="token", style={"button_width": "auto"})
        self.kept_view, self.sim_view, self.mask_view = (w.Image(format="jpeg") for _ in range(3))
        self.caption, self.attention, self.mask_note = w.HTML(), w.HTML(), w.HTML()
        self.mask_button = w.Button(description="predict mask", disabled=not data.predicts_masks)
        banner = f"<div style='color:#b2182b'><b>{html.escape(data.banner)}</b></div>" if data.banner else ""
        header = w.HTML(f"<div><i>{html.escape(TOOL_LABEL)}</i></div>{banner}"
                        f"<div>{html.escape(data.referent_note)}</div>")
        legend = w.HTML(
            " ".join(f"<span style='color:rgb{draw.colour_of(p)}'>&#9632;</span> {html.escape(label)}"
                                 for p,
                                 label in draw.PART_LABELS.items() if p in ("similarity", "context", "")))
        panels = w.HBox([w.VBox([w.HTML("<b>kept tokens</b>"), self.kept_view]),
                         w.VBox([w.HTML("<b>CLIP similarity to [EOS]</b> (per token; referent outlined)"),
                                 self.sim_view]),
                         w
                         .VBox(
                             [w.HTML("<b>predicted mask</b>"), self.mask_view, self.mask_button,
                              self.mask_note])])
        self.widget = w.VBox(
            [header, w.HBox([self.method, self.budget]), self.text, legend, self.caption, panels,
                              self.token, self.attention])
        self.method.observe(self._on_method, names="value")
        self.budget.observe(lambda _: self.redraw(similarity=False), names="value")
        self.text.observe(self._on_text, names="value")
        self.token.observe(lambda _: self._draw_attention(), names="value")
        self.mask_button.on_click(lambda _: self.predict_mask())
        self._prepare(first)
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _token_options(self, t: int) -> list[tuple[str, int]]:
        return [(tok, j) for j, tok in enumerate(self.data.tokens[t])]

    def _prepare(self, method: str) -> None:
        """Compute ``method``'s selections once: every budget when cheap (a CLIP-side method) and asked
        for."""
        if self.precompute and self.data.spec(method).acts_on_clip:
            self.data.precompute(method)

    def _on_method(self, change) -> None:
        method = change["new"]
        self._prepare(method)
        top = self.data.top_budget(method)
        if self.budget.value > top:
            self.budget.value = top
        self.budget.max = top
        self.redraw(similarity=False)

    def _on_text(self, change) -> None:
        t = change["new"]
        self.token.options = self._token_options(t)
        self.token.value = len(self.data.tokens[t]) - 1
        self.redraw()

    def predict_mask(self) -> None:
        """The predicted masks at the current method and budget (``ground``, once; then cached), drawn."""
        self.data.masks(self.method.value, self.budget.value)
        self.redraw()

    def redraw(self, similarity: bool = True) -> None:
        """Draw the views for the current state from the caches (a selection not yet computed is computed
        once); ``similarity``: the similarity map too (it changes with the text only)."""
        d, method, k, t = self.data, self.method.value, self.budget.value, self.text.value
        kept = d.kept(method, k)
        self.kept_view.value = draw.jpeg(draw.kept_tokens(d.window, d.grid, kept.indices, kept.parts))
        if similarity:
            self.sim_view.value = draw.jpeg(
                draw.similarity_map(d.window, d.grid, d.similarity[t], d.referent[t]))
        masks = d.mask_cache.get((method, k))
        if masks is not None:
            self.mask_view.value = draw.jpeg(draw.mask_overlay(d.window, masks[t]))
            self.mask_note.value = f"mask of text {t + 1} at {method}, K = {k}"
        else:
            if self._no_mask is None:
                self._no_mask = draw.jpeg((d.window * 0.35).astype(np.uint8))
            self.mask_view.value = self._no_mask
            self.mask_note.value = ("not computed yet at this method and budget: press 'predict mask'"
                                    if d.predicts_masks else "a CLIP alone predicts no mask (give a "
                                    "grounding model)")
        self.caption.value = html.escape(caption(d, method, k))
        self._draw_attention()
        self.redraws += 1

    def _draw_attention(self) -> None:
        t = self.text.value
        j = self.token.value if self.token.value is not None else len(self.data.tokens[t]) - 1
        self.attention.value = attention_html(self.data.tokens[t], self.data.attention[t][j], j)
