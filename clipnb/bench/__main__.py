"""python -m clipnb.bench: see clipnb/bench/__init__.py."""
from . import main

raise SystemExit(main())
