"""Print a heartbeat every second for --seconds seconds."""

import argparse
import time

parser = argparse.ArgumentParser()
parser.add_argument("--seconds", type=int, default=600)
args = parser.parse_args()
for i in range(args.seconds):
    print(f"heartbeat {i}", flush=True)
    time.sleep(1)
print("done")
