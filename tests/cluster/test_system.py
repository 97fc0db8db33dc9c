"""Systems: presets, torus sizing, fat-tree tiers, price and power, and their errors."""

import pytest
import yaml

from chipforge.arch import catalog_names, load_chip
from chipforge.cluster import (
    NET_HOP_LATENCY_S,
    load_system,
    parse_systems,
    system,
    system_names,
)
from chipforge.errors import ClusterError


def test_every_catalog_chip_has_a_default_system():
    for name in catalog_names():
        s = system(name, 2 * system(name, 1).chips_per_node + 1)
        assert s.chip.name == name
        assert s.price_per_chip_usd > 0 and s.power_per_chip_w > s.chip.tdp_w
        assert len(system_names()) >= len(catalog_names())


def test_dgx_a100_bandwidths_from_the_datasheets():
    s = system("a100-sxm", 16)
    assert (s.chips_per_node, s.nodes, s.topology) == (8, 2, "switched")
    # 12 NVLinks x 50 GB/s both ways / 2 = 300 GB/s one way; one 200 Gb/s HDR NIC a GPU
    assert s.scale_up_bytes_per_s == pytest.approx(300e9)
    assert s.scale_out_bytes_per_s == pytest.approx(25e9)
    assert s.network.latency_s == pytest.approx(NET_HOP_LATENCY_S)  # one tier: one switch


def test_fat_tree_tiers_follow_the_radix():
    # rail-optimized: each of 8 rails is a tree over one NIC per node. QM8700 radix 40:
    # one switch takes 40 nodes; two tiers 20 x 40 = 800; beyond that three
    tiers = {chips: load_system("dgx-a100", chips).network.tiers
             for chips in (320, 328, 6400, 6408)}
    assert tiers == {320: 1, 328: 2, 6400: 2, 6408: 3}
    three = load_system("dgx-a100", 6408).network
    assert three.latency_s == pytest.approx(NET_HOP_LATENCY_S + 4 * 130e-9)


def test_price_and_power_per_chip_add_the_network_share():
    one_node = system("h100-sxm", 8)
    assert one_node.network is None
    assert one_node.price_per_chip_usd == pytest.approx(30_000 + 10_000)
    assert one_node.power_per_chip_w == pytest.approx(700 + 550)
    two = system("h100-sxm", 16)
    # one tier: a NIC ($2,000, 25 W), one switch port ($550, 17 W), one link ($1,500, 17 W)
    assert two.price_per_chip_usd == pytest.approx(40_000 + 2_000 + 550 + 1_500)
    assert two.power_per_chip_w == pytest.approx(1_250 + 25 + 17 + 17)
    # two tiers: 3 switch ports and 2 links per NIC
    big = system("h100-sxm", 8 * 65)
    assert big.network.tiers == 2
    assert big.price_per_chip_usd == pytest.approx(40_000 + 2_000 + 3 * 550 + 2 * 1_500)


def test_torus_dims_fit_the_chip_count():
    assert system("tpu-v5e", 64).torus_dims == (8, 8)
    assert system("tpu-v5e", 256).torus_dims == (16, 16)
    pods = system("tpu-v5e", 512)
    assert (pods.torus_dims, pods.nodes, pods.network is not None) == ((16, 16), 2, True)
    assert system("forge-t1", 100).torus_dims == (10, 10)
    assert system("forge-t1", 7).torus_dims == (7, 1)
    assert system("forge-t1", 4096).torus_dims == (32, 32)


def test_a_spec_that_is_not_in_the_catalog_needs_a_preset():
    spec = load_chip("h100-sxm").model_copy(update={"name": "my-chip"})
    assert system(spec, 16, preset="dgx-h100").chip.name == "my-chip"
    with pytest.raises(ClusterError, match="chip 'my-chip' has no default system; expected "
                                           "preset= one of: atlas-800t-a2"):
        system(spec, 16)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: system("a100-sxm", 0),
     "chips: 0; expected a whole number of chips from 1 to 1,000,000"),
    (lambda: system("a100-sxm", 2.5), "chips: 2.5; expected a whole number"),
    (lambda: load_system("nope", 8), "system preset 'nope' unknown; expected one of: "),
    (lambda: system("a100-sxm", 8, preset="nope"), "preset 'nope' unknown"),
    (lambda: system("no-such-chip", 8), "chip: unknown chip 'no-such-chip'"),
])
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises(ClusterError) as err:
        call()
    assert message in str(err.value)


def _doc(**preset_changes):
    def sourced():
        return {"value": 1, "source": "s"}

    net = {k: sourced() for k in ("nic_gbit_per_s", "switch_radix", "switch_hop_latency_s",
                                "nic_usd", "nic_w", "switch_port_usd", "switch_port_w",
                                "link_usd", "link_w")}
    preset = {"chip": "a100-sxm", "source": "s", "topology": "switched",
              "chips_per_node": sourced(), "network": "n", "host_usd_per_chip": sourced(),
              "host_w_per_chip": sourced(), **preset_changes}
    return {"networks": {"n": {"description": "d", **net}}, "defaults": {},
            "presets": {"p": preset}}


def test_a_systems_file_is_validated_field_by_field():
    parse_systems(_doc(), "f.yaml")
    with pytest.raises(ClusterError, match=r"f.yaml: presets.p.chip: Field required \(got \{\}\)"):
        parse_systems({"networks": {}, "defaults": {}, "presets": {"p": {}}}, "f.yaml")
    with pytest.raises(ClusterError, match=r"f.yaml: presets.p.host_w_per_chip: Value error, "
                                           r"expected exactly one of 'source' or 'assumption'"):
        parse_systems(_doc(host_w_per_chip={"value": 3}), "f.yaml")
    with pytest.raises(ClusterError, match=r"presets.p.topology: .*got 'mesh'"):
        parse_systems(_doc(topology="mesh"), "f.yaml")
    with pytest.raises(ClusterError, match=r"presets.p.network: 'x' is not a network"):
        parse_systems(_doc(network="x"), "f.yaml")
    with pytest.raises(ClusterError, match=r"presets.p.torus_dims: \[4\]; expected 2 sizes"):
        parse_systems(_doc(topology="torus2d", torus_dims=[4]), "f.yaml")


def test_a_systems_file_of_ones_own(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_doc(network=None)))
    one = load_system("p", 1, path=path)
    # a100-sxm: $15,000 (catalog) + $1 host; 400 W + 1 W; one chip per node, no network
    assert (one.price_per_chip_usd, one.power_per_chip_w, one.network) == (15_001, 401, None)
    with pytest.raises(ClusterError, match=r"chips: 2; preset 'p' has no network between "
                                           r"its 1-chip nodes, so expected at most 1"):
        load_system("p", 2, path=path)
    with pytest.raises(ClusterError, match=r"system preset 'q' unknown; expected one of: p$"):
        load_system("q", 1, path=path)
    with pytest.raises(ClusterError, match=r"is a directory; expected a systems YAML file"):
        load_system("p", 1, path=tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("presets: [")
    with pytest.raises(ClusterError, match=r"bad.yaml: YAML syntax error"):
        load_system("p", 1, path=bad)
