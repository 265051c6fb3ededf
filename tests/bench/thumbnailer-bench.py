#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The thumbnailer benchmark: images per second, side by side in one run.

    /usr/bin/python3 tests/bench/thumbnailer-bench.py [--build _build]
        [--count 150] [--jobs N] [--size large] [--rounds 1]
        [--images DIR] [--results DIR]

Rows, each on the same generated photos (1920x1080 JPEGs), with the same
number of jobs, each into an empty cache:
  afork-thumbnailer        a fresh sandboxed process per image
  gdk-pixbuf in-process    threads of one process, no isolation: the limit
  fork per image           hand-written: a child forked per image from a
                           warm process, no sandbox, nothing sent back: the
                           most a fresh process per image can reach here
  gdk-pixbuf-thumbnailer   spawned per file, as without a sandbox
  bwrap + gdk-pixbuf-thumbnailer
                           spawned per file inside bwrap with the GNOME
                           thumbnail factory's arguments (where bwrap works)
then afork-thumbnailer and the fork per image with 1 and 2 jobs, for the
scaling. The header gives what a page costs a new process on this machine
(bench-page-costs), which bounds every row that starts processes.

The figures are ratios between rows of this run; the raw output goes to
tests/bench/results/. Targets (not asserted): afork-thumbnailer >= 2.5x
bwrap, >= 1.5x gdk-pixbuf-thumbnailer, >= 0.85x in-process; 1 -> 2 jobs
>= 1.7x.
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

SIZES = {"normal": 128, "large": 256, "x-large": 512, "xx-large": 1024}
SOURCE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SOURCE))


def log(out, text=""):
    print(text, flush=True)
    out.append(text)


def find_build(build):
    programs = {
        "thumbnailer": os.path.join(build, "examples", "thumbnailer", "afork-thumbnailer"),
        "make-images": os.path.join(build, "tests", "thumbnailer", "thumbnailer-make-images"),
        "inprocess": os.path.join(build, "tests", "bench", "thumbnailer-inprocess"),
        "page-costs": os.path.join(build, "tests", "bench", "bench-page-costs"),
    }
    for name, path in programs.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"thumbnailer-bench: {path} not built (is gdk-pixbuf-2.0's -dev installed?)")
    return programs


def images_in(directory):
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.endswith(".jpg"))


def run_afork(programs, images_dir, jobs, size, cache):
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    start = time.monotonic()
    result = subprocess.run([programs["thumbnailer"], f"--jobs={jobs}", f"--size={size}",
                             images_dir], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"afork-thumbnailer failed: {result.stdout}{result.stderr}")
    return elapsed, result.stdout.strip()


def run_inprocess(programs, files, jobs, size, cache, fork=False):
    start = time.monotonic()
    result = subprocess.run([programs["inprocess"]] + (["--fork"] if fork else []) +
                            [str(jobs), str(SIZES[size]),
                             os.path.join(cache, "thumbnails", size)] + files,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"in-process helper failed: {result.stdout}{result.stderr}")
    return elapsed, result.stdout.strip()


def thumb_name(path):
    uri = "file://" + urllib.parse.quote(os.path.abspath(path))
    return hashlib.md5(uri.encode()).hexdigest() + ".png"


def bwrap_arguments(infile, outdir):
    """What gnome-desktop-thumbnail-script.c gives bwrap (without its
    seccomp filter, which needs libseccomp at run time)."""
    args = ["bwrap", "--ro-bind", "/usr", "/usr",
            "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    for d in ("bin", "lib64", "lib", "sbin"):
        absolute = "/" + d
        if not os.path.exists(absolute):
            continue
        if os.path.islink(absolute) and os.path.realpath(absolute) == "/usr/" + d:
            args += ["--symlink", "/usr/" + d, absolute]
        else:
            args += ["--ro-bind", absolute, absolute]
    ext = os.path.splitext(infile)[1]
    s_infile = "/tmp/gnome-desktop-file-to-thumbnail" + ext
    args += ["--proc", "/proc", "--dev", "/dev", "--chdir", "/",
             "--setenv", "GIO_USE_VFS", "local", "--unshare-all", "--die-with-parent",
             "--bind", outdir, "/tmp", "--ro-bind", infile, s_infile]
    return args, s_infile, "/tmp/gnome-desktop-thumbnailer.png"


def run_spawned(files, jobs, size, cache, sandboxed):
    out_dir = os.path.join(cache, "thumbnails", size)
    os.makedirs(out_dir, exist_ok=True)
    pixels = str(SIZES[size])

    def one(path):
        final = os.path.join(out_dir, thumb_name(path))
        if sandboxed:
            work = tempfile.mkdtemp(prefix="gnome-desktop-thumbnailer-", dir=cache)
            args, s_in, s_out = bwrap_arguments(path, work)
            argv = args + ["gdk-pixbuf-thumbnailer", "-s", pixels, s_in, s_out]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            shutil.move(os.path.join(work, "gnome-desktop-thumbnailer.png"), final)
            shutil.rmtree(work)  # and the mount point bwrap left for the input
        else:
            subprocess.run(["gdk-pixbuf-thumbnailer", "-s", pixels, path, final], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, files))
    return time.monotonic() - start, ""


def bwrap_works():
    if shutil.which("bwrap") is None:
        return False, "bwrap not installed (package bubblewrap)"
    result = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "true"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        return False, "bwrap cannot create namespaces here: " + result.stderr.strip()
    return True, ""


def measure(name, function, count, out, rates):
    cache = tempfile.mkdtemp(prefix="afork-thumbnailer-bench-cache-")
    try:
        elapsed, detail = function(cache)
        made = len(os.listdir(os.path.join(cache, "thumbnails", SIZE_NAME)))
        if made != count:
            raise RuntimeError(f"{name}: {made} thumbnails made of {count}")
        rate = count / elapsed
        rates.setdefault(name, []).append(rate)
        log(out, f"  {name:<34} {rate:8.1f} images/s  ({elapsed:.2f} s)  {detail}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main():
    global SIZE_NAME
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "_build"))
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--size", choices=sorted(SIZES), default="large")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--images", help="a folder of JPEGs to use instead of generated ones")
    parser.add_argument("--results", default=os.path.join(SOURCE, "results"))
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args()
    SIZE_NAME = args.size

    programs = find_build(os.path.abspath(args.build))
    out = []
    workdir = tempfile.mkdtemp(prefix="afork-thumbnailer-bench-")
    try:
        if args.images:
            images_dir = os.path.abspath(args.images)
        else:
            images_dir = os.path.join(workdir, "photos")
            log(out, f"Generating {args.count} photo-like JPEGs (1920x1080) in {images_dir}")
            subprocess.run([programs["make-images"], images_dir, str(args.count)], check=True)
        files = images_in(images_dir)
        count = len(files)

        ok, why = bwrap_works()
        log(out, f"{count} images, {args.size} ({SIZES[args.size]} px), {args.jobs} jobs, "
                 f"{args.rounds} round(s); {platform.node()}, {os.cpu_count()} CPUs, "
                 f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC")
        if not ok:
            log(out, f"  (no bwrap row: {why})")
        costs = subprocess.run([programs["page-costs"]], stdout=subprocess.PIPE, text=True)
        if costs.returncode == 0:
            log(out, "  " + costs.stdout.strip())

        rows = [
            ("afork-thumbnailer",
             lambda c: run_afork(programs, images_dir, args.jobs, args.size, c)),
            ("gdk-pixbuf in-process",
             lambda c: run_inprocess(programs, files, args.jobs, args.size, c)),
            ("fork per image, hand-written",
             lambda c: run_inprocess(programs, files, args.jobs, args.size, c, fork=True)),
        ]
        have_gpt = shutil.which("gdk-pixbuf-thumbnailer") is not None
        if have_gpt:
            rows.append(("gdk-pixbuf-thumbnailer per file",
                         lambda c: run_spawned(files, args.jobs, args.size, c, False)))
        else:
            log(out, "  (no gdk-pixbuf-thumbnailer rows: the program is not installed)")
        if ok and have_gpt:
            rows.append(("bwrap + gdk-pixbuf-thumbnailer",
                         lambda c: run_spawned(files, args.jobs, args.size, c, True)))
        if not args.no_scaling:
            rows += [
                ("afork-thumbnailer --jobs=1",
                 lambda c: run_afork(programs, images_dir, 1, args.size, c)),
                ("afork-thumbnailer --jobs=2",
                 lambda c: run_afork(programs, images_dir, 2, args.size, c)),
                ("fork per image, 1 job",
                 lambda c: run_inprocess(programs, files, 1, args.size, c, fork=True)),
                ("fork per image, 2 jobs",
                 lambda c: run_inprocess(programs, files, 2, args.size, c, fork=True)),
            ]

        rates = {}
        for r in range(args.rounds):
            log(out, f"round {r + 1}:")
            for name, function in rows:
                measure(name, function, count, out, rates)

        def best(name):
            return max(rates[name]) if name in rates else None

        afork = best("afork-thumbnailer")
        log(out)
        log(out, "Ratios (best of each row), against the targets:")
        checks = [
            ("afork / bwrap + gdk-pixbuf-thumbnailer", "bwrap + gdk-pixbuf-thumbnailer", 2.5),
            ("afork / gdk-pixbuf-thumbnailer", "gdk-pixbuf-thumbnailer per file", 1.5),
            ("afork / in-process", "gdk-pixbuf in-process", 0.85),
        ]
        for label, other, target in checks:
            if best(other) is None:
                log(out, f"  {label:<48}    n/a   (target >= {target})")
                continue
            ratio = afork / best(other)
            verdict = "met" if ratio >= target else "NOT met"
            log(out, f"  {label:<48} {ratio:6.2f}x  (target >= {target}: {verdict})")
        if not args.no_scaling:
            ratio = best("afork-thumbnailer --jobs=2") / best("afork-thumbnailer --jobs=1")
            verdict = "met" if ratio >= 1.7 else "NOT met"
            log(out, f"  {'scaling 1 -> 2 jobs':<48} {ratio:6.2f}x  (target >= 1.7: {verdict})")

        # The same ratios for the hand-written fork per image: what a
        # fresh process per image can reach at best on this machine.
        fork = best("fork per image, hand-written")
        log(out, "For scale, the hand-written fork per image:")
        log(out, f"  {'afork / fork per image':<48} {afork / fork:6.2f}x")
        for label, other, target in checks:
            if best(other) is not None:
                label = "fork per image" + label[len("afork"):]
                log(out, f"  {label:<48} {fork / best(other):6.2f}x  (the target for afork: {target})")
        if not args.no_scaling:
            ratio = best("fork per image, 2 jobs") / best("fork per image, 1 job")
            log(out, f"  {'fork per image, scaling 1 -> 2 jobs':<48} {ratio:6.2f}x  (the target for afork: 1.7)")

        os.makedirs(args.results, exist_ok=True)
        stamp = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")
        path = os.path.join(args.results, f"thumbnailer-{stamp}.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(out) + "\n")
        print(f"(raw output: {os.path.relpath(path, ROOT)})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
