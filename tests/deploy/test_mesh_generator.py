"""dpsec-mesh: what it writes, what it refuses, and that re-running keeps keys and certs."""

import hashlib
import os
import re
import subprocess

import pytest

from conftest import REPO

MESH = os.path.join(REPO, "deploy", "mesh", "dpsec-mesh")
EXAMPLE = os.path.join(REPO, "deploy", "mesh", "example.toml")

TWO_SITES = """
[mesh]
domain = "t.dpsec"
cert_days = 2

[[site]]
name = "a"
address = "192.0.2.1"
subnets = ["10.1.0.0/24"]

[[site]]
name = "b"
address = "192.0.2.2"
subnets = ["10.2.0.0/24", "10.20.0.0/16"]
inside_gateway = "10.2.0.254"
"""
THIRD_SITE = """
[[site]]
name = "c"
kind = "strongswan"
address = "192.0.2.3"
subnets = ["10.3.0.0/24"]
"""


def gen(tmp_path, text, out="out"):
    inv = tmp_path / "inv.toml"
    inv.write_text(text)
    return subprocess.run(["/usr/bin/python3", MESH, str(inv), str(tmp_path / out)],
                          capture_output=True, text=True, timeout=120)


def tree(root):
    """{relative path: (sha256, mtime_ns, mode)} of every file below root."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            st = os.stat(p)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = (hashlib.sha256(fh.read()).hexdigest(),
                                                 st.st_mtime_ns, st.st_mode & 0o777)
    return out


def site_files(name, dpsec=True):
    files = {"%s/swanctl/swanctl.conf" % name, "%s/swanctl/conf.d/mesh.conf" % name,
             "%s/swanctl/x509/%s.pem" % (name, name), "%s/swanctl/x509ca/ca.pem" % name,
             "%s/swanctl/private/%s.key" % (name, name)}
    if dpsec:
        files.add("%s/dataplane.conf" % name)
    return files


def connections(conf_text):
    """Connection names at the first level of `connections { }` (tabs as generated)."""
    return re.findall(r"^\t(\S+) \{$", conf_text, re.M)


def test_two_sites_tree_and_content(tmp_path):
    p = gen(tmp_path, TWO_SITES)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    t = tree(out)
    assert set(t) == {"ca/ca.key", "ca/ca.pem"} | site_files("a") | site_files("b")
    for key in ("ca/ca.key", "a/swanctl/private/a.key", "b/swanctl/private/b.key"):
        assert t[key][2] == 0o600, key
    # certificates are signed by the mesh CA and carry the site's identity
    for name in ("a", "b"):
        cert = out / name / "swanctl" / "x509" / ("%s.pem" % name)
        v = subprocess.run(["pki", "--verify", "--in", str(cert), "--cacert",
                            str(out / "ca" / "ca.pem")], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        pr = subprocess.run(["pki", "--print", "--in", str(cert)], capture_output=True,
                            text=True).stdout
        assert "%s.t.dpsec" % name in pr, pr
    conf = (out / "a" / "swanctl" / "conf.d" / "mesh.conf").read_text()
    assert connections(conf) == ["b"]
    for line in ("local_addrs = 192.0.2.1", "remote_addrs = 192.0.2.2",
                 "local_ts = 10.1.0.0/24", "remote_ts = 10.2.0.0/24,10.20.0.0/16",
                 "start_action = trap", "auth = pubkey", "cacerts = ca.pem",
                 "certs = a.pem", "id = b.t.dpsec", "rekey_time = 1h", "life_time = 66m",
                 "proposals = aes256gcm16-prfsha384-ecp384", "esp_proposals = aes256gcm16"):
        assert line in conf, (line, conf)
    dp = (out / "b" / "dataplane.conf").read_text().splitlines()
    for line in ("port 0 name inside", "port 1 name outside", "addr add 10.2.0.1/24 dev inside",
                 "addr add 192.0.2.2/24 dev outside",
                 "route add 10.1.0.0/24 via 192.0.2.1 dev outside",
                 # fail-closed baseline under dpsec-ike's policies for the peer's subnet
                 "policy add src 0.0.0.0/0 dst 10.1.0.0/24 dir out action discard priority 60000",
                 "policy add src 10.1.0.0/24 dst 0.0.0.0/0 dir in action discard priority 60000"):
        assert line in dp, (line, dp)
    assert "route add 10.20.0.0/16 via 10.2.0.254 dev inside" in dp, dp


def test_lost_ca_key_is_refused(tmp_path):
    """A CA certificate without its key: no new key that would not match what every site
    trusts; the generator says so and writes nothing."""
    assert gen(tmp_path, TWO_SITES).returncode == 0
    (tmp_path / "out" / "ca" / "ca.key").unlink()
    before = tree(tmp_path / "out")
    p = gen(tmp_path, TWO_SITES)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "exists without ca/ca.key" in p.stderr, p.stderr
    assert tree(tmp_path / "out") == before


def test_rerun_with_added_site_keeps_ca_and_certs(tmp_path):
    assert gen(tmp_path, TWO_SITES.replace('"10.2.0.0/24", "10.20.0.0/16"',
                                           '"10.2.0.0/24"')).returncode == 0
    before = tree(tmp_path / "out")
    # unchanged inventory: nothing is written at all
    p = gen(tmp_path, TWO_SITES.replace('"10.2.0.0/24", "10.20.0.0/16"', '"10.2.0.0/24"'))
    assert p.returncode == 0 and "up to date" in p.stdout, p.stdout + p.stderr
    assert tree(tmp_path / "out") == before

    p = gen(tmp_path, TWO_SITES.replace('"10.2.0.0/24", "10.20.0.0/16"', '"10.2.0.0/24"')
            + THIRD_SITE)
    assert p.returncode == 0, p.stderr
    after = tree(tmp_path / "out")
    keep = {"ca/ca.key", "ca/ca.pem", "a/swanctl/private/a.key", "a/swanctl/x509/a.pem",
            "b/swanctl/private/b.key", "b/swanctl/x509/b.pem", "a/swanctl/x509ca/ca.pem",
            "b/swanctl/x509ca/ca.pem", "a/swanctl/swanctl.conf", "b/swanctl/swanctl.conf"}
    for f in keep:
        assert after[f] == before[f], "%s was rewritten" % f
    must_change = {"a/swanctl/conf.d/mesh.conf", "b/swanctl/conf.d/mesh.conf",
                   "a/dataplane.conf", "b/dataplane.conf"}
    for f in must_change:
        assert after[f][0] != before[f][0], "%s did not get the new site" % f
    assert set(after) == set(before) | site_files("c", dpsec=False)
    wrote = {os.path.relpath(line.split(" ", 1)[1], str(tmp_path / "out"))
             for line in p.stdout.splitlines() if line.startswith("wrote ")}
    assert wrote == must_change | site_files("c", dpsec=False), p.stdout
    out = tmp_path / "out"
    assert connections((out / "a/swanctl/conf.d/mesh.conf").read_text()) == ["b", "c"]
    assert connections((out / "c/swanctl/conf.d/mesh.conf").read_text()) == ["a", "b"]
    assert "route add 10.3.0.0/24 via 192.0.2.3 dev outside" in \
        (out / "a/dataplane.conf").read_text()
    v = subprocess.run(["pki", "--verify", "--in", str(out / "c/swanctl/x509/c.pem"),
                        "--cacert", str(out / "ca/ca.pem")], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout


def test_example_inventory(tmp_path):
    p = subprocess.run(["/usr/bin/python3", MESH, EXAMPLE, str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    dp = (tmp_path / "out" / "zurich" / "dataplane.conf").read_text()
    assert "route add 0.0.0.0/0 via 198.51.100.1 dev outside" in dp
    assert "route add 10.10.0.0/16 via 10.10.0.254 dev inside" in dp
    geneva = (tmp_path / "out" / "geneva" / "swanctl" / "conf.d" / "mesh.conf").read_text()
    assert "rekey_time = 30m" in geneva and "life_time = 40m" in geneva
    assert not (tmp_path / "out" / "branch" / "dataplane.conf").exists()


def site(name, addr, subnets, extra=""):
    return '\n[[site]]\nname = "%s"\naddress = "%s"\nsubnets = %s\n%s\n' % (
        name, addr, subnets, extra)


A = site("a", "192.0.2.1", '["10.1.0.0/24"]')
BAD = {
    "duplicate name": (A + site("a", "192.0.2.2", '["10.2.0.0/24"]'),
                       "duplicate site name 'a'"),
    "duplicate address": (A + site("b", "192.0.2.1", '["10.2.0.0/24"]'),
                          "duplicate address 192.0.2.1"),
    "overlapping subnets": (A + site("b", "192.0.2.2", '["10.1.0.128/25"]'),
                            "overlapping subnets: 10.1.0.0/24 of site 'a' and 10.1.0.128/25 "
                            "of site 'b'"),
    "prefix too long": (A + site("b", "192.0.2.2", '["10.2.0.0/33"]'),
                        "site 'b': malformed subnet '10.2.0.0/33'"),
    "host bits set": (A + site("b", "192.0.2.2", '["10.2.0.1/24"]'),
                      "site 'b': malformed subnet '10.2.0.1/24' (10.2.0.1/24 has host bits"),
    "bad address": (A + site("b", "192.0.2.300", '["10.2.0.0/24"]'),
                    "site 'b': 'address' is not an IP address: '192.0.2.300'"),
    "bad outside": (A + site("b", "192.0.2.2", '["10.2.0.0/24"]', 'outside = "192.0.2.2"'),
                    "site 'b': 'outside' must be address/prefix-length, got '192.0.2.2'"),
    "unknown site key": (A + site("b", "192.0.2.2", '["10.2.0.0/24"]', 'adress = "x"'),
                         "unknown key 'adress' in site 'b'"),
    "unknown mesh key": ('[mesh]\nproposal = "x"\n' + A + site("b", "192.0.2.2",
                                                              '["10.2.0.0/24"]'),
                         "unknown key 'proposal' in [mesh]"),
    "unknown table": ('[sites]\nx = 1\n' + A + site("b", "192.0.2.2", '["10.2.0.0/24"]'),
                      "unknown key 'sites' in the inventory's top level"),
    "bad kind": (A + site("b", "192.0.2.2", '["10.2.0.0/24"]', 'kind = "libreswan"'),
                 "site 'b': 'kind' must be one of dpsec, strongswan, got 'libreswan'"),
    "rekey not below life": ('[mesh]\nchild_rekey_time = "2h"\nchild_life_time = "1h"\n' + A
                             + site("b", "192.0.2.2", '["10.2.0.0/24"]'),
                             "[mesh]: child_rekey_time (2h) must be shorter than "
                             "child_life_time (1h)"),
    "bad duration": (A + site("b", "192.0.2.2", '["10.2.0.0/24"]', 'dpd_delay = "soon"'),
                     "site 'b': 'dpd_delay' must be a duration"),
    "one site": (A, "a mesh needs at least two [[site]] entries, found 1"),
    "missing address": (A + '\n[[site]]\nname = "b"\nsubnets = ["10.2.0.0/24"]\n',
                        "site 'b': missing 'address'"),
    "peer off-link without gateway": (A + site("b", "198.51.100.2", '["10.2.0.0/24"]'),
                                      "site 'a': peer 'b' (198.51.100.2) is not on the "
                                      "outside network 192.0.2.0/24: set 'gateway'"),
    "subnet off the inside link": (A + site("b", "192.0.2.2", '["10.2.0.0/24", "10.9.0.0/16"]'),
                                   "site 'b': subnet 10.9.0.0/16 is not on the inside link "
                                   "10.2.0.0/24: set 'inside_gateway'"),
    "not TOML": ("[[site]\nname = a\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_inventory_rejected(tmp_path, case):
    text, message = BAD[case]
    p = gen(tmp_path, text)
    assert p.returncode == 1, (case, p.stdout, p.stderr)
    assert message in p.stderr, "expected %r in:\n%s" % (message, p.stderr)
    assert p.stderr.startswith("dpsec-mesh: "), p.stderr
    # nothing is generated from a bad inventory
    assert not (tmp_path / "out").exists()


def test_all_errors_reported_at_once(tmp_path):
    p = gen(tmp_path, A + site("a", "192.0.2.1", '["10.1.0.0/16"]', 'colour = "red"'))
    assert p.returncode == 1
    for msg in ("duplicate site name 'a'", "duplicate address 192.0.2.1",
                "overlapping subnets", "unknown key 'colour'"):
        assert msg in p.stderr, (msg, p.stderr)
