import sys

from earlyphase.cli import main

sys.exit(main())
