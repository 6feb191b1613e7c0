"""A card's ``num_visual`` (N known before anything loads, which the studies' early budget checks read) is
the N the family's own configuration gives its preset; a released checkpoint's hub id has the
paper preset's N."""

from __future__ import annotations

from litelvlm.glamm.config import ARCHS
from litelvlm.registry.families import card, cards, check_budgets_fit
from litelvlm.video.runner import FRAME_PATCHES
from litelvlm.videoglamm.config import PRESETS


def test_the_cards_n_is_the_configurations():
    glamm = card("glamm")
    assert dict(glamm.num_visual) == {p: ARCHS[p].num_visual_tokens for p in glamm.presets.values()}
    assert dict(card("videoglamm").num_visual) == {p: PRESETS[p].clip_tokens for p in PRESETS}
    assert set(card("videoglamm").num_visual.values()) == {FRAME_PATCHES}


def test_every_preset_in_num_visual_is_one_of_the_cards():
    for c in cards():
        assert set(c.num_visual) <= set(c.presets.values()), c.name


def test_a_hub_id_has_the_paper_presets_n_and_a_variable_n_family_none():
    assert card("glamm").fixed_num_visual("MBZUAI/GLaMM-RefSeg") == 576
    assert card("glamm").fixed_num_visual("tiny-random:3") == 576
    assert card("unipixel").fixed_num_visual("unipixel-tiny-random") is None
    check_budgets_fit("unipixel-tiny-random", [100000])   # N depends on the image: checked once known
    check_budgets_fit("openai/clip-vit-large-patch14-336", [100000])   # no family's model
