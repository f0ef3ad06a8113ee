import sys

from medlab.cli import main

sys.exit(main())
