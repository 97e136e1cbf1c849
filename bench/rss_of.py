"""Runs a command and prints its peak resident memory (MiB) as the last line of stderr."""

import resource
import subprocess
import sys

done = subprocess.run(sys.argv[1:], check=False)
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"\npeak-rss-mib {peak_kib // 1024}\n")
sys.exit(done.returncode)
