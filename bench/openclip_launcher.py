"""Run ``open_clip_train.main`` with webdataset 1.0.2: ``python bench/openclip_launcher.py <open_clip_train args>``.

open_clip_train 3.3.0's own tar expander crashes with webdataset >= 0.2.96 (``KeyError: 'fname'``; upstream
webdataset#384, open_clip#935). This launcher swaps in webdataset's expander with ``eof_value=None`` (no
end-of-shard marker sample) and changes nothing else. ``main`` returns -1 (exit 0 upstream) when the experiment
folder already exists; here that is exit code 3, so a reused ``--logs/--name`` cannot pass for a run.
"""

from __future__ import annotations

import functools
import sys


def main(argv: list[str]) -> int:
    """Patch the expander, run open_clip_train's main; 0 on success, 3 if it refused to run."""
    import open_clip_train.data as ocd
    from webdataset.tariterators import tar_file_expander

    ocd.tar_file_expander = functools.partial(tar_file_expander, eof_value=None)
    from open_clip_train.main import main as oc_main

    return 3 if oc_main(argv) == -1 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
