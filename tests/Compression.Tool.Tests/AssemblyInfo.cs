// The tests load models into one process and share libtorch's thread pool: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
