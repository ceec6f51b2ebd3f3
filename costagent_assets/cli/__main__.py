"""`python -m costagent_assets.cli`: the `costagent` command."""

import sys

from costagent_assets.cli.main import main

sys.exit(main())
