#!/usr/bin/env python3
"""check_engine_link: fail if a binary linked with the engine library
alone (test_engine) needs or contains SQLite, libuv, OpenSSL or libyaml.

The engine is pure (docs/internals/engine.md); its test links only
engine_dep and cmocka. A library in the ELF NEEDED list (readelf -d) or a
symbol of one of them (nm: defined, as in a static link, or undefined)
means the seam has rotted. Usage: check_engine_link.py BINARY
"""
import re
import subprocess
import sys

# Shared objects and symbol prefixes the engine must not pull in.
LIBS = re.compile(r"lib(sqlite3|uv|ssl|crypto|yaml)[.-]")
SYMS = re.compile(r"^(sqlite3_|uv_|SSL_|EVP_|X509_|OPENSSL_|yaml_)")


def run(argv):
    return subprocess.run(argv, check=True, capture_output=True,
                          text=True).stdout


def main():
    if len(sys.argv) != 2:
        print("usage: check_engine_link.py BINARY", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    bad = []
    for line in run(["readelf", "-d", binary]).splitlines():
        if "(NEEDED)" in line and LIBS.search(line):
            bad.append("needs " + line.split()[-1])
    nsyms = 0
    for line in run(["nm", "-A", binary]).splitlines():
        nsyms += 1
        name = line.split()[-1]
        if SYMS.match(name):
            bad.append("symbol " + name)
    if nsyms == 0:
        # A stripped binary would pass without being checked.
        print(f"{binary}: no symbols to check", file=sys.stderr)
        return 1
    for b in bad:
        print(f"{binary}: {b}", file=sys.stderr)
    if bad:
        print("the engine library must link without SQLite, libuv, "
              "OpenSSL and libyaml (docs/internals/engine.md)",
              file=sys.stderr)
        return 1
    print(f"{binary}: {nsyms} symbols, none from SQLite, libuv, OpenSSL, "
          "libyaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
