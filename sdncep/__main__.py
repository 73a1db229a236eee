import sys

from sdncep.cli import main

sys.exit(main())
