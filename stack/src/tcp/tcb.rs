pub struct Tcb;
