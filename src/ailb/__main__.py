from ailb.cli import run

run()
