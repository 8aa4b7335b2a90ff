"""Stacks and reference rasters are paired by patch id or file name, whatever the order of the two lists."""

from __future__ import annotations

import pytest

from lc_plugin.core.errors import LandCoverError
from lc_plugin.reference.pairing import name_keys, pair_stacks, patch_key


def test_pairs_by_patch_id_in_folder_or_file_name():
    stacks = ["/run/465_5079/interpolated.tif", "/run/466_5079/interpolated.tif"]
    refs = ["/refs/r_466_5079.tif", "/refs/r_465_5079.tif"]  # the other order
    assert pair_stacks(stacks, refs) == [(stacks[0], refs[1]), (stacks[1], refs[0])]
    assert patch_key("/data/2017/465_5079/interpolated.tif") == "465_5079"
    assert patch_key("/x/stack.tif") is None


def test_pairs_by_what_differs_in_the_names():
    stacks = ["/a/north_interp.tif", "/a/south_interp.tif", "/a/east_interp.tif"]
    refs = ["/b/ref_south.tif", "/b/ref_east.tif", "/b/ref_north.tif"]
    assert name_keys(refs) == ["south", "east", "north"]
    assert pair_stacks(stacks, refs) == [(stacks[0], refs[2]), (stacks[1], refs[0]), (stacks[2], refs[1])]
    assert pair_stacks(["/a/x.tif"], ["/b/y.tif"]) == [("/a/x.tif", "/b/y.tif")]  # one of each needs no name


def test_unpairable_lists_are_a_clear_error():
    with pytest.raises(LandCoverError, match="2 time stacks but 1 reference") as err:
        pair_stacks(["/a/1_2.tif", "/a/3_4.tif"], ["/b/1_2.tif"])
    assert err.value.argument == "references"
    with pytest.raises(LandCoverError, match="Cannot tell which reference raster goes with which time stack") as err:
        pair_stacks(["/a/north_i.tif", "/a/south_i.tif"], ["/b/r_east.tif", "/b/r_west.tif"])
    assert "north_i.tif, south_i.tif / r_east.tif, r_west.tif" in str(err.value)
