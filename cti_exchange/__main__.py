from cti_exchange.cli.entry import main

main()
