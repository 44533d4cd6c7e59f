package steps

import "runtime"

var runtimeCaller = runtime.Caller
