from ipsotrace.cli import main

main()
