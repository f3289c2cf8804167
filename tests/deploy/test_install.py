"""`make install`: the exact tree, units systemd accepts, configs the programs accept, and
a reinstall that keeps an operator's /etc edits."""

import os
import subprocess

import pytest

import ike
import topo as T
from conftest import REPO

# path -> mode of everything `make install DESTDIR=...` (default PREFIX) must create
EXPECTED = {
    "etc": 0o755, "etc/default": 0o755, "etc/default/dpsec-dataplane": 0o644,
    "etc/dpsec": 0o755, "etc/dpsec/dataplane.conf": 0o644, "etc/dpsec/strongswan.conf": 0o644,
    "etc/dpsec/swanctl": 0o755, "etc/dpsec/swanctl/swanctl.conf": 0o644,
    "etc/dpsec/swanctl/conf.d": 0o755, "etc/dpsec/swanctl/x509": 0o755,
    "etc/dpsec/swanctl/x509ca": 0o755, "etc/dpsec/swanctl/private": 0o700,
    "lib": 0o755, "lib/systemd": 0o755, "lib/systemd/system": 0o755,
    "lib/systemd/system/dpsec-dataplane.service": 0o644,
    "lib/systemd/system/dpsec-ike.service": 0o644,
    "usr": 0o755, "usr/local": 0o755, "usr/local/bin": 0o755, "usr/local/sbin": 0o755,
    "usr/local/lib": 0o755, "usr/local/lib/dpsec": 0o755,
    "usr/local/bin/dpsecctl": 0o755, "usr/local/bin/dpsec-mesh": 0o755,
    "usr/local/sbin/dpsec-dataplane": 0o755, "usr/local/sbin/dpsec-ike": 0o755,
    "usr/local/lib/dpsec/hugepages.sh": 0o755,
}
UNITS = ("dpsec-dataplane.service", "dpsec-ike.service")


def make_install(destdir, *extra):
    p = subprocess.run(["make", "-s", "-C", REPO, "install", "DESTDIR=%s" % destdir] +
                       list(extra), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def listing(root):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.stat(p).st_mode & 0o7777
    return out


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("destdir")
    make_install(str(d))
    return d


def test_install_tree(destdir):
    got = listing(destdir)
    assert got == EXPECTED, "missing: %s\nunexpected: %s\nmodes: %s" % (
        sorted(set(EXPECTED) - set(got)), sorted(set(got) - set(EXPECTED)),
        {k: (oct(got[k]), oct(v)) for k, v in EXPECTED.items() if k in got and got[k] != v})
    for prog in ("dpsec-dataplane", "dpsec-ike"):
        with open(os.path.join(REPO, "build", prog), "rb") as a, \
                open(destdir / "usr/local/sbin" / prog, "rb") as b:
            assert a.read() == b.read(), prog


def test_units_use_install_paths(destdir):
    dp = (destdir / "lib/systemd/system/dpsec-dataplane.service").read_text()
    ik = (destdir / "lib/systemd/system/dpsec-ike.service").read_text()
    assert "@" not in dp.replace("$", "") and "@SBINDIR@" not in ik
    assert "ExecStartPre=/usr/local/lib/dpsec/hugepages.sh" in dp
    assert ("ExecStart=/usr/local/sbin/dpsec-dataplane $DPSEC_EAL_ARGS -- --config "
            "/etc/dpsec/dataplane.conf") in dp
    assert "EnvironmentFile=-/etc/default/dpsec-dataplane" in dp
    for text in (dp, ik):
        assert "Restart=on-failure" in text and "RuntimeDirectory=dpsec" in text
        # the shared /run/dpsec must survive either unit stopping
        assert "RuntimeDirectoryPreserve=yes" in text
    assert "Type=simple" in dp
    assert "ExecStart=/usr/local/sbin/dpsec-ike" in ik
    assert "Environment=STRONGSWAN_CONF=/etc/dpsec/strongswan.conf" in ik
    assert "Wants=dpsec-dataplane.service" in ik and "After=dpsec-dataplane.service" in ik
    # dpsec-ike outlives dataplane restarts: no hard dependency
    for hard in ("Requires=", "BindsTo=", "PartOf=", "Requisite="):
        assert hard not in ik, hard


def test_prefix_honoured(tmp_path):
    make_install(str(tmp_path), "PREFIX=/opt/dpsec")
    assert (tmp_path / "opt/dpsec/sbin/dpsec-dataplane").exists()
    assert (tmp_path / "opt/dpsec/bin/dpsecctl").exists()
    assert not (tmp_path / "usr").exists()
    unit = (tmp_path / "lib/systemd/system/dpsec-dataplane.service").read_text()
    assert "ExecStart=/opt/dpsec/sbin/dpsec-dataplane " in unit
    assert "ExecStartPre=/opt/dpsec/lib/dpsec/hugepages.sh" in unit


def test_systemd_analyze_verify(destdir, tmp_path):
    """systemd-analyze verify on the installed units, their programs pointed at the
    DESTDIR copies (the units name /usr/local/..., which need not exist on this machine)."""
    for u in UNITS:
        text = (destdir / "lib/systemd/system" / u).read_text()
        (tmp_path / u).write_text(text.replace("/usr/local/", "%s/usr/local/" % destdir))
    p = subprocess.run(["systemd-analyze", "verify"] + [str(tmp_path / u) for u in UNITS],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stdout + p.stderr
    # the check has teeth: a missing program is refused
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / UNITS[1]).write_text((tmp_path / UNITS[1]).read_text().replace(
        "sbin/dpsec-ike", "sbin/no-such-program"))
    p = subprocess.run(["systemd-analyze", "verify", str(bad / UNITS[1])], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0 and "no-such-program" in p.stderr, p.stderr


def test_reinstall_keeps_etc(tmp_path):
    destdir = tmp_path
    make_install(str(destdir))
    conf = destdir / "etc/dpsec/dataplane.conf"
    conf.write_text("# edited by the operator\n")
    unit = destdir / "lib/systemd/system/dpsec-ike.service"
    unit.write_text("stale\n")
    p = make_install(str(destdir))
    assert conf.read_text() == "# edited by the operator\n"
    assert "keeping existing %s" % conf in p.stdout
    assert unit.read_text() != "stale\n", "units must be replaced on reinstall"
    assert listing(destdir) == EXPECTED


def test_installed_configs_are_accepted(destdir, tmp_path):
    """The installed strongswan.conf starts dpsec-ike (its vici socket at the documented
    path) and the installed swanctl.conf loads; the example dataplane.conf starts a dataplane."""
    ns = T.Netns("%s%s-inst" % (T.NS_PREFIX, T.secrets.token_hex(3)))
    daemon = dp = None
    try:
        conf = (destdir / "etc/dpsec/strongswan.conf").read_text()
        conf = conf.replace("/var/log/dpsec-ike.log", "@LOG@")
        daemon = ike.Daemon(ns, str(destdir / "usr/local/sbin/dpsec-ike"), conf,
                            "unix:///run/dpsec/charon.vici", "inst").start()
        daemon.wait_ready()
        p = daemon.swanctl("--load-all", "--noprompt", "--file",
                           str(destdir / "etc/dpsec/swanctl/swanctl.conf"))
        # the same daemon also answers swanctl configured through the installed file
        p = T.run(["nsenter", "-t", str(daemon.pid), "-m", "-n", "env",
                   "STRONGSWAN_CONF=%s" % daemon.conf, "swanctl", "--stats"])
        assert "uptime" in p.stdout, p.stdout
        T.veth(ns, "v-inside", ns, "v-outside")
        for ifname in ("v-inside", "v-outside"):
            ns.sysctl("net.ipv6.conf.%s.disable_ipv6" % ifname, "1")
        dp = T.Dataplane(ns, (destdir / "etc/dpsec/dataplane.conf").read_text(),
                         ["v-inside", "v-outside"], ns.name[len(T.NS_PREFIX):],
                         binary=str(destdir / "usr/local/sbin/dpsec-dataplane")).start()
        dp.wait_ready()
        routes = [line.split()[:3] for line in dp.ctl("show", "route").stdout.splitlines()]
        assert ["10.2.0.0/24", "192.0.2.254", "outside"] in routes, routes
    finally:
        if daemon:
            daemon.stop()
            T.shutil.rmtree(daemon.dir, ignore_errors=True)
        if dp:
            dp.stop()
            dp.cleanup_dir()
        ns.delete()
