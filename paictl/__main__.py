import sys

from paictl.cli import main

sys.exit(main())
