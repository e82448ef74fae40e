from advisor.cli import run

run(prog_name="advisor")
