//! pcap capture of TUN traffic.
