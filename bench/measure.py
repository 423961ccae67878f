#!/usr/bin/env python3
"""Run commands alternately, several rounds, and report each one's median wall time, median CPU time (user + system, all threads) and peak RSS.

usage: measure.py ROUNDS NAME=CMD [NAME=CMD ...]   (CMD is run by /bin/sh; {round} is replaced)
Prints one JSON object per command on stdout. Peak RSS is the child's ru_maxrss (KiB on Linux).
"""
import json, os, statistics, subprocess, sys, time

rounds = int(sys.argv[1])
commands = [arg.split("=", 1) for arg in sys.argv[2:]]
results = {name: {"wall_s": [], "cpu_s": [], "max_rss_kib": []} for name, _ in commands}
for r in range(rounds):
    for name, cmd in commands:
        start = time.perf_counter()
        proc = subprocess.Popen(["/bin/sh", "-c", cmd.replace("{round}", str(r))], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            sys.exit(f"{name} failed (status {status}): {cmd}")
        results[name]["wall_s"].append(wall)
        results[name]["cpu_s"].append(usage.ru_utime + usage.ru_stime)
        results[name]["max_rss_kib"].append(usage.ru_maxrss)
for name, _ in commands:
    res = results[name]
    print(json.dumps({"name": name, "median_wall_s": round(statistics.median(res["wall_s"]), 4),
                      "median_cpu_s": round(statistics.median(res["cpu_s"]), 4),
                      "max_rss_mib": round(max(res["max_rss_kib"]) / 1024, 1), "rounds": rounds}))
