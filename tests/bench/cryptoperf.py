"""Crypto-only ceiling: Debian's dpdk-test-crypto-perf on the cryptodev the dataplane uses.

One worker lcore (-l 0,1: main lcore 0, test lcore 1, as the dataplane), throughput test,
burst 32, --buffer-sz = the bytes the cipher processes per ESP packet (pcapgen.esp_payload_len).
AES-GCM: --optype aead on crypto_aesni_gcm with the ESP sizes (key 16/32, IV 12, AAD 8,
ICV 16). AES-CBC + HMAC-SHA256: crypto_aesni_mb; encrypt = cipher-then-auth; the tool needs
test-vector files for chained decrypt/verify, so decrypt = cipher-only decrypt followed by
auth-only generate (the same HMAC work as verify), combined as 1 / (1/a + 1/b).
"""

import os
import subprocess

import pcapgen

TOOL = "/usr/bin/dpdk-test-crypto-perf"


def _run(tag, vdev, opts, total_ops):
    args = [TOOL, "-l", "0,1", "--no-pci", "--file-prefix", "dpb-cp-%s" % tag, "-m", "256",
            "--vdev", vdev, "--", "--silent", "--csv-friendly", "--ptest", "throughput",
            "--burst-sz", "32", "--total-ops", str(total_ops)] + opts
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    for line in p.stdout.splitlines():
        f = line.split(",")
        if len(f) >= 8 and f[0].strip().isdigit():
            return float(f[7]) * 1e6  # Ops(Millions)
    raise RuntimeError("crypto-perf gave no result: %s\n%s%s" % (" ".join(args), p.stdout[-800:],
                                                                 p.stderr[-800:]))


def _buffers(algo, size, extra=0):
    """--buffer-sz (and --imix) words for a frame size or IMIX."""
    if size == "imix":
        sizes = [pcapgen.esp_payload_len(algo, s) + extra for s, _ in pcapgen.IMIX]
        return ["--buffer-sz", ",".join(map(str, sizes)),
                "--imix", ",".join(str(n) for _, n in pcapgen.IMIX)]
    return ["--buffer-sz", str(pcapgen.esp_payload_len(algo, int(size)) + extra)]


def ceiling_pps(tag, direction, algo, size):
    total = _TOTAL_OVERRIDE or (2000000 if size in (64, "imix") else 1000000)
    if algo.startswith("aes-gcm"):
        key = 16 if algo == "aes-gcm-128" else 32
        opts = ["--devtype", "crypto_aesni_gcm", "--optype", "aead", "--aead-algo", "aes-gcm",
                "--aead-op", direction, "--aead-key-sz", str(key), "--aead-iv-sz", "12",
                "--aead-aad-sz", "8", "--digest-sz", "16"] + _buffers(algo, size)
        return _run(tag, "crypto_aesni_gcm0", opts, total)
    cipher = ["--cipher-algo", "aes-cbc", "--cipher-key-sz", "16", "--cipher-iv-sz", "16"]
    # HMAC covers ESP header (8) + IV (16) + ciphertext.
    auth = ["--auth-algo", "sha2-256-hmac", "--auth-op", "generate", "--auth-key-sz", "32",
            "--digest-sz", "16"]
    if direction == "encrypt":
        opts = (["--devtype", "crypto_aesni_mb", "--optype", "cipher-then-auth",
                 "--cipher-op", "encrypt"] + cipher + auth + _buffers(algo, size))
        return _run(tag, "crypto_aesni_mb0", opts, total)
    a = _run(tag, "crypto_aesni_mb0", ["--devtype", "crypto_aesni_mb", "--optype", "cipher-only",
                                       "--cipher-op", "decrypt"] + cipher + _buffers(algo, size),
             total)
    b = _run(tag, "crypto_aesni_mb0", ["--devtype", "crypto_aesni_mb", "--optype", "auth-only"]
             + auth + _buffers(algo, size, 24), total)
    return 1.0 / (1.0 / a + 1.0 / b)


def cleanup(tag):
    import dataplane_bench
    dataplane_bench.remove_dpdk_files("dpb-cp-%s" % tag)
    if os.path.isdir("/var/run/dpdk/dpb-cp-%s" % tag):
        subprocess.run(["rm", "-rf", "/var/run/dpdk/dpb-cp-%s" % tag])


def ceiling_pps_timed(tag, direction, algo, size, seconds=2.0):
    """ceiling_pps with --total-ops sized so the measurement lasts about `seconds`
    (a short probe first): on a shared machine a fixed op count lasts anywhere from
    0.1 to 10 s and short runs are mostly noise."""
    global _TOTAL_OVERRIDE
    _TOTAL_OVERRIDE = 200000
    try:
        probe = ceiling_pps(tag, direction, algo, size)
        _TOTAL_OVERRIDE = max(200000, int(probe * seconds))
        return ceiling_pps(tag, direction, algo, size)
    finally:
        _TOTAL_OVERRIDE = None


_TOTAL_OVERRIDE = None
