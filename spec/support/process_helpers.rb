# frozen_string_literal: true

require "socket"

# For specs that run servers in other processes.
module ProcessHelpers
  # A loopback TCP port that was free a moment ago.
  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end
end

RSpec.configure { |c| c.include ProcessHelpers }
