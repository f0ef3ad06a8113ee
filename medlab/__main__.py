from medlab.cli import main
import sys

sys.exit(main())
