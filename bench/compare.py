#!/usr/bin/env python3
"""Benchmark against Scrapy: runs owlmesh, Scrapy and the bare Rust loop over the same local
site, in alternation, and prints throughput, memory and CPU with their ratios.

bench/run.sh installs what this needs and calls it; see bench/README.md for what each
figure means. Only the standard library is used, so the orchestration never depends on the
Scrapy virtualenv it measures.

What is measured, per crawler and round:
- pages/s and items/s over the crawl interval: owlmesh from `job submit` until `job status`
  says done (the mesh is already up, as a running service is); Scrapy from spider_opened to
  spider_closed (after the interpreter has loaded); bare-crawl from its start to its end.
- peak memory: owlmesh, the sum of VmHWM (each process's peak resident set) over every
  process under `owlmesh up`, including `up` itself and the dashboard; Scrapy and
  bare-crawl, their one process's peak (ru_maxrss). A sum of per-process peaks is never
  below the peak of the sum, so this errs against owlmesh.
- peak PSS: the peak of the summed proportional set size of the crawler's processes,
  sampled every 100 ms: pages the processes share (the owlmesh executable) counted once.
- CPU seconds per 1,000 pages: user + system time over the crawl interval; owlmesh, of
  every process of the mesh (from /proc/<pid>/stat before submit and at done); Scrapy, of
  its process (getrusage in the spider); bare-crawl, of its whole run.

Every crawler must produce exactly the site's catalogue (same URLs, titles, prices and
SKUs) and fetch exactly the pages a polite crawler can reach; anything else fails the run.
"""

import argparse
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CRAWLERS = ("owlmesh", "scrapy", "bare")
DEFAULT_HOSTS = "127.0.0.11:8080,127.0.0.12:8080,127.0.0.13:8080,127.0.0.14:8080"
PER_HOST = 32  # requests in flight per host, for every crawler
USER_AGENT = "owlmesh-bench"
# Bounds of the pause between two `owlmesh job status` calls while a crawl runs.
POLL_MIN_SECONDS = 0.05
POLL_MAX_SECONDS = 2.0


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A failure that ends the run with a message rather than a traceback."""


# ---------------------------------------------------------------------------------------
# /proc: process trees, CPU and memory


def proc_stat(pid):
    """(parent pid, user + system seconds) of a live process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ")".
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_tree(root):
    """The pids of `root` and every descendant."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat:
                parents.setdefault(stat[0], []).append(int(entry))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(parents.get(pid, []))
    return tree


def tree_cpu(pids):
    """{pid: cpu seconds} for the processes still alive."""
    return {pid: stat[1] for pid in pids if (stat := proc_stat(pid))}


def peak_rss_kib(pid):
    """VmHWM: the process's peak resident set size so far, in KiB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def process_name(pid):
    """`owlmesh scraper 1234`: the command and its subcommand, with the pid to keep the
    names of processes of the same kind apart."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().split(b"\0")
    except OSError:
        return str(pid)
    command = os.path.basename(words[0].decode(errors="replace"))
    subcommand = words[1].decode(errors="replace") if len(words) > 1 else ""
    return f"{command} {subcommand} {pid}".replace("  ", " ")


def run_measured(command, log_path, stdout_path=None):
    """Runs a command to its end; returns (exit code, rusage, peak summed PSS in KiB) of
    that very process."""
    with open(log_path, "w") as log_file:
        stdout = open(stdout_path, "w") if stdout_path else log_file
        try:
            process = subprocess.Popen(command, stdout=stdout, stderr=log_file)
            with PssSampler(process.pid) as pss:
                # wait4 gives the child's own resource usage, peak RSS included.
                _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if stdout_path:
                stdout.close()
    return process.returncode, usage, pss.peak_kib


def pss_kib(pid):
    """The process's proportional set size: its private pages plus its share of the pages
    it shares with others (the executable's code, here), in KiB."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PssSampler:
    """Samples the summed PSS of a process tree every 100 ms while in use and keeps the
    peak: memory that several processes share (the one `owlmesh` executable mapped by every
    mesh process) counted once, as the machine pays for it."""

    def __init__(self, root):
        self.root = root
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *_):
        self.stop()

    def _run(self):
        while not self._stop.is_set():
            total = sum(pss_kib(pid) for pid in process_tree(self.root))
            self.peak_kib = max(self.peak_kib, total)
            self._stop.wait(0.1)


# ---------------------------------------------------------------------------------------
# The site and nginx


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def generate_site(generator, work, pages, seed, hosts):
    """Writes the site with `site-generate`, owlmesh-site's generator of the shop the demo
    and the tests crawl, and beside it (job.toml) the catalogue job aimed at it, with the
    same rules as the spider and bare-crawl."""
    site = os.path.join(work, "site")
    subprocess.run([generator, "--out", site, "--products", str(pages), "--seed", str(seed),
                    "--hosts", hosts, "--concurrency-per-host", str(PER_HOST),
                    "--user-agent", USER_AGENT], check=True)
    with open(os.path.join(site, "site.json")) as shape:
        return site, json.load(shape)


class Nginx:
    """The bench's own nginx, serving one server block per site host."""

    def __init__(self, work, site, shape, workers):
        self.prefix = os.path.join(work, "nginx")
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        servers = []
        for index, host in enumerate(shape["hosts"]):
            root = os.path.join(site, "hosts", str(index))
            servers.append(f"    server {{\n        listen {host};\n        root {root};\n"
                           "        index index.html;\n    }\n")
        with open(os.path.join(BENCH, "nginx.conf.in")) as template:
            config = (template.read().replace("@WORK@", work).replace("@WORKERS@", workers)
                      .replace("@SERVERS@", "".join(servers)))
        self.config = os.path.join(self.prefix, "nginx.conf")
        with open(self.config, "w") as out:
            out.write(config)
        self.hosts = shape["hosts"]
        self.process = None

    def start(self):
        # Another server on these addresses would answer in place of this nginx, which
        # then fails to bind: make that a clear error rather than a crawl of the wrong site.
        taken = [host for host in self.hosts if self._answers(host)]
        if taken:
            raise BenchError(f"{', '.join(taken)} already in use (another bench running?); "
                             "pick other addresses with --hosts")
        log(f"starting nginx ({self.config})")
        self.log = open(os.path.join(self.prefix, "stderr.log"), "w")
        self.process = subprocess.Popen(["nginx", "-p", self.prefix, "-c", self.config],
                                        stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"nginx exited at start; see {self.prefix}/stderr.log "
                                 f"and {self.prefix}/error.log")
            if all(self._answers(host) for host in self.hosts):
                return
            time.sleep(0.1)
        raise BenchError("nginx did not answer within 10 s")

    @staticmethod
    def _answers(host):
        address, port = host.rsplit(":", 1)
        try:
            with socket.create_connection((address, int(port)), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            # SIGQUIT: graceful shutdown of the master and its workers.
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            self.log.close()


def nginx_ceiling(site, shape, seconds, work):
    """Requests/s nginx serves the product pages with wrk: one wrk per host at the same time,
    each with one thread and PER_HOST connections, cycling through that host's products."""
    log(f"measuring the nginx ceiling with wrk for {seconds} s")
    runs = []
    for index, host in enumerate(shape["hosts"]):
        paths = os.path.join(site, "urls", f"{index}.txt")
        command = ["wrk", "-t1", f"-c{PER_HOST}", f"-d{seconds}s", "--latency",
                   "-s", os.path.join(BENCH, "wrk-paths.lua"), f"http://{host}", "--", paths]
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True))
    total, outputs = 0.0, []
    for process in runs:
        output, _ = process.communicate()
        outputs.append(output)
        match = re.search(r"Requests/sec:\s+([\d.]+)", output)
        if process.returncode != 0 or not match:
            raise BenchError(f"wrk failed:\n{output}")
        if "Non-2xx" in output:
            raise BenchError(f"wrk saw error answers:\n{output}")
        total += float(match.group(1))
    with open(os.path.join(work, "wrk.txt"), "w") as out:
        out.write("\n".join(outputs))
    return total


# ---------------------------------------------------------------------------------------
# The crawlers


def owlmesh_client(binary, directory, *arguments, check=True):
    result = subprocess.run([binary, *arguments, "--directory", directory, "--log", "warn"],
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise BenchError(f"owlmesh {' '.join(arguments)} failed:\n{result.stderr}")
    return result


def wait_for_mesh(binary, directory, up, shape_wanted, timeout=90):
    """Until `owlmesh services` lists every instance `owlmesh up` starts."""
    deadline = time.monotonic() + timeout
    counts = {}
    while time.monotonic() < deadline:
        if up.poll() is not None:
            raise BenchError("owlmesh up exited while starting")
        result = owlmesh_client(binary, directory, "services", "--json", check=False)
        if result.returncode == 0:
            counts = {}
            for instance in json.loads(result.stdout or "[]"):
                counts[instance["kind"]] = counts.get(instance["kind"], 0) + 1
            if all(counts.get(kind, 0) >= n for kind, n in shape_wanted.items()):
                return
        time.sleep(0.25)
    raise BenchError(f"the mesh did not come up within {timeout} s: {counts}")


def hosts_per_scraper(binary, directory, hosts):
    """{scraper id: [hosts it owns]}: each host is crawled by the one scraper that owns it
    on the ring, so this shows how the crawl's work is spread over the scrapers."""
    services = json.loads(owlmesh_client(binary, directory, "services", "--json").stdout)
    owners = {i["id"]: [] for i in services if i["kind"] == "scraper"}
    for host in hosts:
        route = owlmesh_client(binary, directory, "route", "scraper", host, "--json")
        owners.setdefault(json.loads(route.stdout)["id"], []).append(host)
    return owners


def run_owlmesh(args, site, shape, round_dir):
    """One crawl by a fresh `owlmesh up`, driven through the CLI as a user would."""
    binary = args.owlmesh
    data = os.path.join(round_dir, "data")
    directory = f"127.0.0.1:{free_port()}"
    dashboard = f"127.0.0.1:{free_port()}"
    job_path = os.path.join(round_dir, "bench-job.toml")
    shutil.copyfile(os.path.join(site, "job.toml"), job_path)
    up_log = open(os.path.join(round_dir, "up.log"), "w")
    pss = None
    # nginx serves the site on loopback, which the scrapers refuse unless allowed.
    # The mesh checks tokens, as it does by default: `up` hands this one to its children and
    # the client commands read it from the environment too.
    os.environ["OWLMESH_TOKEN"] = secrets.token_hex(32)
    up = subprocess.Popen([binary, "up", "--data-dir", data, "--directory-listen", directory,
                           "--dashboard-listen", dashboard, "--allow-network", "127.0.0.0/8"],
                          stdout=up_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for_mesh(binary, directory, up, {"dispatcher": 2, "scraper": 3, "archiver": 2})
        owners = hosts_per_scraper(binary, directory, shape["hosts"])
        pids = process_tree(up.pid)
        cpu_before = tree_cpu(pids)
        pss = PssSampler(up.pid).start()
        started = time.monotonic()
        submitted = owlmesh_client(binary, directory, "job", "submit", job_path, "--json")
        job_id = json.loads(submitted.stdout)["id"]
        client_cpu_before = children_cpu()
        while True:
            status = json.loads(owlmesh_client(binary, directory, "job", "status", job_id,
                                               "--json").stdout)
            if status["state"] in ("done", "failed", "cancelled"):
                break
            if time.monotonic() - started > args.timeout:
                raise BenchError(f"owlmesh did not finish within {args.timeout} s: {status}")
            time.sleep(poll_pause(status["done"], shape["expected_pages"],
                                  time.monotonic() - started))
        elapsed = time.monotonic() - started
        pss.stop()
        client_cpu = children_cpu() - client_cpu_before
        after = process_tree(up.pid)
        cpu_after = tree_cpu(after)
        if set(after) != set(pids):
            log(f"warning: the mesh's processes changed during the crawl: {pids} -> {after}")
        cpu = sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after)
        names = {pid: process_name(pid) for pid in after}
        peaks = {names[pid]: peak_rss_kib(pid) for pid in after}
        cpu_by_process = {names[pid]: cpu_after[pid] - cpu_before.get(pid, 0.0)
                          for pid in cpu_after}
        peak_kib = sum(peaks.values())
        if status["state"] != "done":
            raise BenchError(f"owlmesh job ended {status['state']}: {status}")
        items_path = os.path.join(round_dir, "items.jsonl")
        owlmesh_client(binary, directory, "export", job_id, "--format", "jsonl", "-o",
                       items_path)
    finally:
        if pss:
            pss.stop()
        stop_mesh(up)
        up_log.close()
    return {
        "pages": status["done"], "failed": status["failed"], "items": status["items"],
        "elapsed_s": elapsed, "cpu_s": cpu, "peak_kib": peak_kib, "processes": len(after),
        "peak_pss_kib": pss.peak_kib,
        "peak_kib_by_process": peaks, "hosts_per_scraper": owners,
        "cpu_s_by_process": cpu_by_process,
        "poll_cpu_s": client_cpu, "items_path": items_path,
        "items_file": read_owlmesh_items(items_path),
    }


def poll_pause(done, expected, elapsed):
    """How long to wait before asking `owlmesh job status` again. Each call is a process
    that costs the machine some 20 ms of CPU, taken from the mesh it measures, so the
    pause is half the time the crawl still needs at its pace so far: few calls while the
    crawl runs, and one every POLL_MIN_SECONDS at its end, which bounds the timing error."""
    if done <= 0 or done >= expected:
        return POLL_MIN_SECONDS
    remaining = (expected - done) * elapsed / done
    return min(max(remaining / 2, POLL_MIN_SECONDS), POLL_MAX_SECONDS)


def children_cpu():
    """CPU seconds of this script's finished children (the CLI calls, here)."""
    usage = os.times()
    return usage.children_user + usage.children_system


def stop_mesh(up):
    if up.poll() is None:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            log("owlmesh up did not stop within 60 s; killing it")
            up.kill()
            up.wait()


def run_scrapy(args, shape, shape_path, round_dir):
    items_path = os.path.join(round_dir, "items.jsonl")
    summary_path = os.path.join(round_dir, "summary.json")
    command = [args.scrapy, "runspider", os.path.join(BENCH, "scrapy", "catalogue_spider.py"),
               "-O", items_path, "-a", f"site={shape_path}", "-a", f"summary={summary_path}",
               # The spider's default is for the bench's four hosts; follow --hosts.
               "-s", f"CONCURRENT_REQUESTS={PER_HOST * len(shape['hosts'])}"]
    code, usage, pss = run_measured(command, os.path.join(round_dir, "scrapy.log"))
    if code != 0 or not os.path.exists(summary_path):
        raise BenchError(f"scrapy failed ({code}); see {round_dir}/scrapy.log")
    with open(summary_path) as summary_file:
        summary = json.load(summary_file)
    return {
        "pages": summary["pages"], "items": summary["items"], "failed": 0,
        "elapsed_s": summary["elapsed_s"], "cpu_s": summary["cpu_s"],
        "process_cpu_s": usage.ru_utime + usage.ru_stime, "peak_kib": usage.ru_maxrss,
        "peak_pss_kib": pss, "processes": 1, "items_path": items_path, "items_file": read_flat_items(items_path),
    }


def run_bare(args, shape, round_dir):
    items_path = os.path.join(round_dir, "items.jsonl")
    summary_path = os.path.join(round_dir, "summary.json")
    command = [args.bare, "--seeds", ",".join(shape["seeds"]), "--allow",
               ",".join(shape["hosts"]), "--concurrency", str(PER_HOST * len(shape["hosts"])),
               "--user-agent", USER_AGENT, "--out", items_path]
    code, usage, pss = run_measured(command, os.path.join(round_dir, "bare.log"),
                                    summary_path)
    if code != 0:
        raise BenchError(f"bare-crawl failed ({code}); see {round_dir}/bare.log")
    with open(summary_path) as summary_file:
        summary = json.loads(summary_file.read().strip().splitlines()[-1])
    return {
        "pages": summary["pages"], "items": summary["items"], "failed": summary["failed"],
        "elapsed_s": summary["elapsed_s"], "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_kib": usage.ru_maxrss, "peak_pss_kib": pss, "processes": 1,
        "items_path": items_path,
        "items_file": read_flat_items(items_path),
    }


# ---------------------------------------------------------------------------------------
# Items and the check


def read_flat_items(path):
    """[(url, title, price, sku)] from {"url","title","price","sku"} lines."""
    with open(path, encoding="utf-8") as lines:
        return [(i["url"], i.get("title"), i.get("price"), i.get("sku"))
                for i in map(json.loads, filter(str.strip, lines))]


def read_owlmesh_items(path):
    """[(url, title, price, sku)] from `owlmesh export --format jsonl` lines."""
    with open(path, encoding="utf-8") as lines:
        items = []
        for item in map(json.loads, filter(str.strip, lines)):
            fields = item.get("fields", {})
            items.append((item["url"], fields.get("title"), fields.get("price"),
                          fields.get("sku")))
        return items


def check(name, result, truth, expected_pages):
    """Problems with one crawl's output, as lines; empty when it is exactly the catalogue."""
    problems = []
    items = result.pop("items_file")
    unique = set(items)
    if len(unique) != len(items):
        problems.append(f"{len(items) - len(unique)} duplicate items")
    missing, extra = truth - unique, unique - truth
    for label, wrong in (("missing", missing), ("unexpected", extra)):
        if wrong:
            sample = "; ".join(map(str, sorted(wrong)[:3]))
            problems.append(f"{len(wrong)} {label} items, e.g. {sample}")
    if result["pages"] != expected_pages:
        problems.append(f"{result['pages']} pages fetched, the site has {expected_pages} "
                        "that a polite crawler reaches")
    return [f"{name}: {problem}" for problem in problems]


# ---------------------------------------------------------------------------------------
# The report


def figures(result):
    return {
        "pages_per_s": result["pages"] / result["elapsed_s"],
        "items_per_s": result["items"] / result["elapsed_s"],
        "peak_mib": result["peak_kib"] / 1024,
        "peak_pss_mib": result["peak_pss_kib"] / 1024,
        "cpu_per_1000": result["cpu_s"] / result["pages"] * 1000 if result["pages"] else 0.0,
    }


FIGURES = [
    ("pages_per_s", "pages/s", "{:,.0f}"),
    ("items_per_s", "items/s", "{:,.0f}"),
    ("peak_mib", "peak memory, MiB", "{:,.1f}"),
    ("peak_pss_mib", "peak PSS, MiB", "{:,.1f}"),
    ("cpu_per_1000", "CPU s / 1,000 pages", "{:,.2f}"),
]
LABELS = {"owlmesh": "owlmesh (full mesh)", "scrapy": "Scrapy", "bare": "bare loop (Rust)"}


def summarize(rounds):
    """{crawler: {figure: (median, low, high)}}"""
    table = {}
    for crawler, results in rounds.items():
        if not results:
            continue
        per_figure = {}
        for key, _, _ in FIGURES:
            values = [figures(r)[key] for r in results]
            per_figure[key] = (statistics.median(values), min(values), max(values))
        table[crawler] = per_figure
    return table


def report(table, ceiling, rounds):
    lines = []
    header = f"{'':<22}" + "".join(f"{label:>30}" for _, label, _ in FIGURES)
    lines.append(f"medians over {rounds} round(s), [min - max]")
    lines.append(header)
    for crawler in CRAWLERS:
        if crawler not in table:
            continue
        cells = []
        for key, _, form in FIGURES:
            median, low, high = table[crawler][key]
            cells.append(f"{form.format(median)} [{form.format(low)} - {form.format(high)}]")
        lines.append(f"{LABELS[crawler]:<22}" + "".join(f"{cell:>30}" for cell in cells))
    if "owlmesh" in table and "scrapy" in table:
        ratios = [f"{table['owlmesh'][key][0] / table['scrapy'][key][0]:.2f}x"
                  if table["scrapy"][key][0] else "-" for key, _, _ in FIGURES]
        lines.append(f"{'owlmesh / Scrapy':<22}" + "".join(f"{r:>30}" for r in ratios))
    lines.append("")
    owlmesh = table.get("owlmesh", {}).get("pages_per_s", (None,))[0]
    if "bare" in table:
        bare = table["bare"]["pages_per_s"][0]
        lines.append(f"practical ceiling, the bare loop:  {bare:,.0f} pages/s")
        if owlmesh:
            lines.append(f"  owlmesh pages/s as a fraction of it: {owlmesh / bare:.0%}"
                         "  (target: at least 70%)")
    if ceiling:
        lines.append(f"nginx ceiling (wrk, product pages): {ceiling:,.0f} requests/s")
        if owlmesh:
            lines.append(f"  owlmesh pages/s as a fraction of it: {owlmesh / ceiling:.0%}")
    return "\n".join(lines)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) // 1024
    return {"cores": os.cpu_count(), "cpu": model, "memory_mib": memory,
            "kernel": platform.release()}


# ---------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--pages", type=int, default=10_000, help="product pages (10000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every crawler (3)")
    parser.add_argument("--seed", type=int, default=8, help="the site's random seed (8)")
    parser.add_argument("--hosts", default=DEFAULT_HOSTS,
                        help=f"the site's hosts, comma-separated ({DEFAULT_HOSTS})")
    parser.add_argument("--work", required=True, help="working folder: site, logs, results")
    parser.add_argument("--owlmesh", required=True, help="the owlmesh executable")
    parser.add_argument("--bare", required=True, help="the bare-crawl executable")
    parser.add_argument("--scrapy", required=True, help="the scrapy executable (venv)")
    parser.add_argument("--site-generate", required=True,
                        help="the site-generate executable (owlmesh-site)")
    parser.add_argument("--crawlers", default=",".join(CRAWLERS),
                        help="which crawlers to run, comma-separated (owlmesh,scrapy,bare)")
    parser.add_argument("--ceiling-seconds", type=int, default=10,
                        help="how long wrk measures nginx (10); 0 skips it")
    parser.add_argument("--nginx-workers", default="auto", help="nginx worker_processes (auto)")
    parser.add_argument("--timeout", type=float, default=1800, help="per crawl, seconds")
    args = parser.parse_args()
    crawlers = [c.strip() for c in args.crawlers.split(",") if c.strip()]
    unknown = set(crawlers) - set(CRAWLERS)
    if unknown:
        parser.error(f"unknown crawlers: {', '.join(sorted(unknown))}")

    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    site, shape = generate_site(args.site_generate, work, args.pages, args.seed, args.hosts)
    shape_path = os.path.join(site, "site.json")
    with open(os.path.join(site, "catalogue.jsonl"), encoding="utf-8") as catalogue:
        truth = {(i["url"], i["title"], i["price"], i["sku"])
                 for i in map(json.loads, catalogue)}
    runs_dir = os.path.join(work, "runs")
    shutil.rmtree(runs_dir, ignore_errors=True)

    nginx = Nginx(work, site, shape, args.nginx_workers)
    rounds = {crawler: [] for crawler in crawlers}
    problems = []
    ceiling = None
    started_at = datetime.datetime.now(datetime.timezone.utc)
    try:
        nginx.start()
        if args.ceiling_seconds > 0:
            ceiling = nginx_ceiling(site, shape, args.ceiling_seconds, work)
            log(f"nginx ceiling: {ceiling:,.0f} requests/s")
        for number in range(1, args.rounds + 1):
            for crawler in crawlers:
                round_dir = os.path.join(runs_dir, f"{number}-{crawler}")
                os.makedirs(round_dir)
                log(f"round {number}/{args.rounds}: {crawler}")
                if crawler == "owlmesh":
                    result = run_owlmesh(args, site, shape, round_dir)
                elif crawler == "scrapy":
                    result = run_scrapy(args, shape, shape_path, round_dir)
                else:
                    result = run_bare(args, shape, round_dir)
                found = check(crawler, result, truth, shape["expected_pages"])
                problems += [f"round {number}, {problem}" for problem in found]
                shown = figures(result)
                log(f"  {result['pages']} pages, {result['items']} items in "
                    f"{result['elapsed_s']:.2f} s: {shown['pages_per_s']:,.0f} pages/s, "
                    f"{shown['peak_mib']:.1f} MiB peak, "
                    f"{shown['cpu_per_1000']:.2f} CPU s / 1,000 pages"
                    + ("" if not found else "  ** ITEMS DO NOT MATCH **"))
                rounds[crawler].append(result)
    finally:
        nginx.stop()

    table = summarize(rounds)
    text = report(table, ceiling, args.rounds)
    print()
    print(f"Benchmark against Scrapy: {shape['products']:,} products, "
          f"{shape['expected_pages']:,} pages over {len(shape['hosts'])} hosts")
    info = machine()
    print(f"{started_at:%Y-%m-%d %H:%M} UTC; {info['cores']} cores, {info['cpu']}, "
          f"{info['memory_mib']:,} MiB")
    print(text)
    if rounds.get("owlmesh"):
        print("\nowlmesh by process, last round: peak memory (VmHWM), CPU s during the crawl")
        last = rounds["owlmesh"][-1]
        for name, kib in sorted(last["peak_kib_by_process"].items()):
            cpu = last["cpu_s_by_process"].get(name, 0.0)
            print(f"  {name:<32} {kib / 1024:>8.1f} MiB {cpu:>8.2f} s")
        spread = ", ".join(f"{scraper}: {len(hosts)}" for scraper, hosts
                           in sorted(last["hosts_per_scraper"].items()))
        print(f"  hosts per scraper: {spread}")
    results = {
        "date": started_at.isoformat(), "machine": info, "site": shape,
        "nginx_workers": args.nginx_workers, "ceiling_requests_per_s": ceiling,
        "rounds": rounds, "summary": table, "problems": problems,
    }
    with open(os.path.join(work, "results.json"), "w") as out:
        json.dump(results, out, indent=2)
    print(f"\nraw figures: {os.path.join(work, 'results.json')}")
    if problems:
        print("\nFAILED: the crawlers did not all produce the site's catalogue:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        sys.exit(2)
    print("items check: every crawler produced exactly the site's catalogue "
          f"({len(truth):,} items), every round")


if __name__ == "__main__":
    try:
        main()
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        sys.exit(1)
