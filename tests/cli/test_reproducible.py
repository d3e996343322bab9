"""The same command and seed write the same bytes in every output file, whatever the thread count
(PNG provenance included); the one record of wall-clock time is named as such (report.json's
cost, training's timing.csv)."""
import json
import os

from tweedie_cli import CliTestCase, run


def tree_bytes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


class SameSeedSameBytes(CliTestCase):
    def assertSameTrees(self, a, b, except_files=()):
        ta, tb = tree_bytes(a), tree_bytes(b)
        self.assertEqual(sorted(ta), sorted(tb))
        for name in ta:
            if name in except_files:
                continue
            self.assertEqual(ta[name], tb[name], f"{name} differs between identical runs")

    def test_simulate_and_solve_across_thread_counts(self):
        outs = []
        for threads in ["1", "2"]:
            prob = self.path("p" + threads)
            run("simulate", "--input", "fashion-mnist:test:0-1", "--op", "gaussian:m=128", "--channel",
                "sign:sigma=0.3", "-o", prob, "--threads", threads, "--quiet", check=0)
            out = self.path("s" + threads)
            run("solve", "--problem", prob, "--method", "diff-onebit", "--set", "steps=3", "-o", out,
                "--threads", threads, "--quiet", check=0)
            outs.append((prob, out))
        self.assertSameTrees(outs[0][0], outs[1][0])
        # report.json records seconds and memory; every other file, PNGs included, is identical.
        self.assertSameTrees(outs[0][1], outs[1][1], except_files=("report.json",))
        ra, rb = (json.load(open(os.path.join(o, "report.json"))) for _, o in outs)
        for r in (ra, rb):
            r["cost"].pop("seconds")
            r["cost"].pop("peak_rss_bytes")
            # wall seconds by activity: the same activities ran, for different times
            self.assertGreater(r["cost"]["seconds_by_activity"]["network"], 0)
            r["cost"]["seconds_by_activity"] = sorted(r["cost"]["seconds_by_activity"])
        self.assertEqual(ra, rb)

    def test_sample_png_twice(self):
        a, b = self.path("a.png"), self.path("b.png")
        for path in (a, b):
            run("sample", "-o", path, "--count", "2", "--steps", "3", "--quiet", "--seed", "3", check=0)
        self.assertEqual(open(a, "rb").read(), open(b, "rb").read())
