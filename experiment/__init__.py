"""The machinery of training runs, shared by train_rnn.py and the studies: one run, its
configuration and record, the pool of workers, the reports and the statistics behind them."""
