#!/usr/bin/env python3
"""check_engine_link: the engine library stays pure (docs/internals/engine.md).

Usage: check_engine_link.py TEST_BINARY ENGINE_LIBRARY

1. TEST_BINARY (test_engine, linked with engine_dep and cmocka alone)
   must neither need (readelf -d, NEEDED) nor contain (nm: defined, as
   in a static link, or undefined) SQLite, libuv, OpenSSL or libyaml.
   A dependency added to engine_dep fails here.
2. ENGINE_LIBRARY's own objects must not call I/O, clock, randomness,
   thread, environment or logging functions (nm -u against a deny
   list): the engine's time and inputs come from its callers. Calls
   made inside common's core on the engine's behalf are not seen; the
   engine calls only allocation, hashing and formatting there.
"""
import re
import subprocess
import sys

# Shared objects and symbol prefixes the engine must not pull in.
LIBS = re.compile(r"lib(sqlite3|uv|ssl|crypto|yaml)[.-]")
SYMS = re.compile(r"^(sqlite3_|uv_|SSL_|EVP_|X509_|OPENSSL_|yaml_)")
# What the engine's own code must not call.
IMPURE = re.compile(
    r"^("
    # clocks
    r"time|clock|clock_gettime|gettimeofday|tc_now_ns|tc_mono_ns|"
    # I/O
    r"open|openat|creat|read|write|pread|pwrite|readv|writev|close|"
    r"fopen|fdopen|freopen|fclose|fread|fwrite|fgets|getline|fflush|"
    r"printf|fprintf|vprintf|vfprintf|dprintf|puts|fputs|fputc|putc|"
    r"putchar|perror|syslog|vsyslog|log_\w+|fatal|"
    r"stat|fstat|lstat|access|unlink|rename|mkdir|opendir|readdir|"
    r"socket|connect|bind|listen|accept|send|sendto|recv|recvfrom|"
    r"mmap|ioctl|fsync|fdatasync|"
    # randomness
    r"rand|rand_r|random|srand|srandom|drand48|getrandom|arc4random\w*|"
    # threads, environment, processes
    r"pthread_\w+|getenv|secure_getenv|setenv|fork|exec\w*|system|popen|"
    r"getpid|sleep|usleep|nanosleep|signal|sigaction"
    r")$")


def run(argv):
    return subprocess.run(argv, check=True, capture_output=True,
                          text=True).stdout


def check_binary(binary, bad):
    for line in run(["readelf", "-d", binary]).splitlines():
        if "(NEEDED)" in line and LIBS.search(line):
            bad.append(f"{binary}: needs {line.split()[-1]}")
    names = [ln.split()[-1] for ln in run(["nm", binary]).splitlines()
             if ln.strip()]
    for name in names:
        if SYMS.match(name):
            bad.append(f"{binary}: symbol {name}")
    return len(names)


def check_library(lib, bad):
    names = set()
    for line in run(["nm", "-u", lib]).splitlines():
        f = line.split()
        # "U name" for each object; object headers end with ':'.
        if len(f) == 2 and f[0] == "U":
            names.add(f[1])
    for name in sorted(names):
        if IMPURE.match(name):
            bad.append(f"{lib}: calls {name}")
    return len(names)


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    bad = []
    nsyms = check_binary(sys.argv[1], bad)
    nund = check_library(sys.argv[2], bad)
    if nsyms == 0 or nund == 0:
        # A stripped binary or an empty library would pass unchecked.
        print("nothing to check: no symbols", file=sys.stderr)
        return 1
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print("the engine must link without SQLite, libuv, OpenSSL and "
              "libyaml, and do no I/O and read no clock "
              "(docs/internals/engine.md)", file=sys.stderr)
        return 1
    print(f"{sys.argv[1]}: {nsyms} symbols, none from SQLite, libuv, "
          f"OpenSSL, libyaml; {sys.argv[2]}: {nund} external calls, "
          "none to I/O, clocks, randomness, threads or logging")
    return 0


if __name__ == "__main__":
    sys.exit(main())
